package awsapi

import (
	"encoding/json"
	"testing"
)

// The console reads Query results by the wire's element names: IAM's
// member names, lists as arrays.
func TestResultJSONUsesWireNames(t *testing.T) {
	type listUsers struct {
		Users       []xmlUser `xml:"Users>member"`
		IsTruncated bool      `xml:"IsTruncated"`
		Marker      string    `xml:"Marker,omitempty"`
	}
	res := listUsers{Users: []xmlUser{{Path: "/", UserName: "alice", UserID: "AIDA1", ARN: "arn:aws:iam::123456789012:user/alice",
		Tags: &xmlTags{M: []xmlTag{{Key: "team", Value: "ops"}}}}, {UserName: "bob"}}}
	b, err := ResultJSON("iam", res)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Users []struct {
			UserName, UserId, Arn string
			Tags                  []struct{ Key, Value string }
		}
		IsTruncated *bool
		Marker      *string
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Users) != 2 || got.Users[0].UserName != "alice" || got.Users[0].UserId != "AIDA1" || got.Users[0].Arn == "" ||
		len(got.Users[0].Tags) != 1 || got.Users[0].Tags[0].Key != "team" || got.Users[1].Tags != nil {
		t.Errorf("ResultJSON = %s", b)
	}
	if got.IsTruncated == nil || *got.IsTruncated || got.Marker != nil {
		t.Errorf("IsTruncated/Marker in %s", b)
	}

	// EC2: the envelope is dropped, nested paths become objects.
	out := &describeInstancesResponse{Reservations: []ec2Reservation{{ReservationID: "r-1", Instances: []ec2Instance{{InstanceID: "i-1", MonitoringState: "disabled"}}}}}
	out.setEnvelope("req")
	b, err = ResultJSON("ec2", out)
	if err != nil {
		t.Fatal(err)
	}
	var ec2 map[string]any
	_ = json.Unmarshal(b, &ec2)
	rs, _ := ec2["reservationSet"].([]any)
	if len(rs) != 1 || ec2["requestId"] != nil || ec2["xmlns"] != nil {
		t.Fatalf("EC2 JSON = %s", b)
	}
	inst := rs[0].(map[string]any)["instancesSet"].([]any)[0].(map[string]any)
	if inst["instanceId"] != "i-1" || inst["monitoring"].(map[string]any)["state"] != "disabled" {
		t.Errorf("EC2 instance JSON = %v", inst)
	}

	// JSON services: their own JSON.
	b, _ = ResultJSON("ec2-instance-connect", sendKeyOutput{RequestID: "r", Success: true})
	if string(b) != `{"RequestId":"r","Success":true}` {
		t.Errorf("EIC JSON = %s", b)
	}
	if b, _ := ResultJSON("iam", nil); string(b) != "{}" {
		t.Errorf("nil result = %s", b)
	}
}
