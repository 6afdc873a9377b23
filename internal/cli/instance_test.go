package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestPrintDeregistered(t *testing.T) {
	var res deregisteredInstance
	if err := json.Unmarshal([]byte(`{"Instance":{"InstanceId":"i-0123456789abcdef0","State":"running","Hostname":"web1",
		"PrivateIpAddress":"10.0.0.5","LastSeen":"2026-11-29T00:00:00Z","Tags":[{"Key":"env","Value":"prod"},{"Key":"Name","Value":"web"}]},
		"AgentSessionEnded":true}`), &res); err != nil {
		t.Fatal(err)
	}
	for format, want := range map[string][]string{
		"json":  {`"InstanceId": "i-0123456789abcdef0"`, `"AgentSessionEnded": true`},
		"text":  {"INSTANCE\ti-0123456789abcdef0\trunning\tweb1\t10.0.0.5\t2026-11-29T00:00:00Z\ttrue\n", "TAGS\tenv\tprod\n", "TAGS\tName\tweb\n"},
		"table": {"Deregistered i-0123456789abcdef0 (it was running); its agent's session was ended.", "env=prod,Name=web"},
	} {
		var b bytes.Buffer
		if err := printDeregistered(&b, format, res); err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("--output %s:\n%s\nwant %q in it", format, b.String(), w)
			}
		}
	}
}

func TestInstanceDeregisterUsage(t *testing.T) {
	for _, args := range [][]string{
		{"instance", "deregister"},
		{"instance", "deregister", "--instance-id", "i-XYZ"},
		{"instance", "deregister", "--instance-id", "i-0123456789abcdef0", "--output", "yaml"},
		{"instance", "deregister", "i-0123456789abcdef0"},
	} {
		var out, errb bytes.Buffer
		if code := Main(t.Context(), args, IO{In: strings.NewReader(""), Out: &out, Err: &errb}); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d (usage)\n%s", args, code, ExitUsage, errb.String())
		}
	}
}

// Tag values and host names are written by others (anyone allowed to tag,
// the agent on a host): in text and table output they cannot reach the
// reader's terminal as control sequences, nor forge columns or rows.
func TestPrintDeregisteredHostileValues(t *testing.T) {
	res := deregisteredInstance{AgentSessionEnded: true}
	res.Instance.InstanceID = "i-0123456789abcdef0"
	res.Instance.State = "running"
	res.Instance.Hostname = "web\x1b]0;owned\x07"
	res.Instance.Tags = append(res.Instance.Tags, struct {
		Key   string `json:"Key"`
		Value string `json:"Value"`
	}{"Name", "x\tFORGED\nINSTANCE\ti-forged"})
	for _, format := range []string{"text", "table"} {
		var b bytes.Buffer
		if err := printDeregistered(&b, format, res); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		if strings.ContainsAny(out, "\x1b\x07") || strings.Contains(out, "\nINSTANCE\ti-forged") {
			t.Errorf("--output %s let control characters through:\n%q", format, out)
		}
		if !strings.Contains(out, `"web\x1b]0;owned\a"`) || !strings.Contains(out, `"x\tFORGED\nINSTANCE\ti-forged"`) {
			t.Errorf("--output %s does not show the escaped values:\n%s", format, out)
		}
	}
}
