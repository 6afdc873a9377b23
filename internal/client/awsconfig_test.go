package client

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
)

// TestLoadQuiet: the AWS SDK's own warnings ("SDK 2026/… WARN falling back
// to IMDSv1 …") never reach the terminal; kaginashi says what went wrong
// in its own words.
func TestLoadQuiet(t *testing.T) {
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden) // no IMDSv2 token, no role
	}))
	defer imds.Close()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE": dir + "/config", "AWS_SHARED_CREDENTIALS_FILE": dir + "/credentials", "AWS_PROFILE": "",
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_EC2_METADATA_DISABLED": "",
		"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.URL, "AWS_REGION": "us-east-1",
	} {
		t.Setenv(k, v)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w // the SDK's default logger writes to os.Stderr as it is when the config loads
	cfg, err := Load(context.Background(), Flags{})
	if err == nil {
		_, err = cfg.Credentials.Retrieve(context.Background())
	}
	os.Stderr = stderr
	w.Close()
	out, _ := io.ReadAll(r)
	if err == nil {
		t.Fatal("credentials found where there are none")
	}
	if len(out) != 0 {
		t.Errorf("the SDK wrote to stderr: %q", out)
	}
}
