package awsapi

import (
	"context"
	"strings"
	"testing"
)

// TestDecodeJSONMessages: a JSON body of the wrong shape is refused with a
// message in the API's terms (member names, JSON types), never a Go type
// name.
func TestDecodeJSONMessages(t *testing.T) {
	for _, tc := range []struct {
		body string
		want string
	}{
		{`[]`, "The request body must be a JSON object"},
		{`"x"`, "The request body must be a JSON object"},
		{`{"InstanceId":5}`, "InstanceId must be a string"},
		{`{"SerialPort":"0"}`, "SerialPort must be a number"},
		{`{"InstanceId":`, "The request body is not valid JSON"},
		{`{} {}`, "text after the JSON object"},
	} {
		var in sendKeyInput
		err := (&call{ctx: context.Background(), body: []byte(tc.body)}).decodeJSON(&in)
		if err == nil {
			t.Errorf("%s: accepted", tc.body)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, "awsapi.") || strings.Contains(msg, "  ") {
			t.Errorf("%s: %q; want it to say %q, in the API's terms", tc.body, msg, tc.want)
		}
	}
	var in sendKeyInput
	if err := (&call{ctx: context.Background(), body: []byte(" ")}).decodeJSON(&in); err != nil {
		t.Errorf("an empty body is {}: %v", err)
	}
}
