package awsapi

import (
	"encoding/json"
	"time"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/store"
)

// CloudTrail's LookupEvents, so that audit events are read with the same
// API (and authorization) as on AWS: `aws cloudtrail lookup-events` and
// `kaginashi audit lookup` both work.

type lookupAttribute struct {
	AttributeKey   string `json:"AttributeKey"`
	AttributeValue string `json:"AttributeValue"`
}

type lookupEventsInput struct {
	LookupAttributes []lookupAttribute `json:"LookupAttributes"`
	StartTime        *float64          `json:"StartTime"`
	EndTime          *float64          `json:"EndTime"`
	MaxResults       int               `json:"MaxResults"`
	NextToken        string            `json:"NextToken"`
}

type ctEvent struct {
	EventID         string   `json:"EventId"`
	EventName       string   `json:"EventName"`
	ReadOnly        string   `json:"ReadOnly"`
	AccessKeyID     string   `json:"AccessKeyId,omitempty"`
	EventTime       float64  `json:"EventTime"`
	EventSource     string   `json:"EventSource"`
	Username        string   `json:"Username,omitempty"`
	Resources       []string `json:"Resources"`
	CloudTrailEvent string   `json:"CloudTrailEvent"`
}

type lookupEventsOutput struct {
	Events    []ctEvent `json:"Events"`
	NextToken string    `json:"NextToken,omitempty"`
}

func epoch(f *float64) time.Time {
	if f == nil {
		return time.Time{}
	}
	sec := int64(*f)
	return time.Unix(sec, int64((*f-float64(sec))*1e9)).UTC()
}

func ctOps() map[string]*op {
	return map[string]*op{
		"LookupEvents": {name: "LookupEvents", action: "cloudtrail:LookupEvents", readOnly: true, run: func(c *call) (any, error) {
			var in lookupEventsInput
			if err := c.decodeJSON(&in); err != nil {
				return nil, err
			}
			f := store.AuditFilter{Since: epoch(in.StartTime), Until: epoch(in.EndTime), Limit: in.MaxResults, Cursor: in.NextToken}
			if in.MaxResults < 0 || in.MaxResults > 50 {
				return nil, apierr.WithCode(apierr.InvalidInput, "InvalidMaxResultsException", "MaxResults must be 1 to 50")
			}
			if len(in.LookupAttributes) > 1 {
				return nil, apierr.WithCode(apierr.InvalidInput, "InvalidLookupAttributesException", "Only one lookup attribute is allowed")
			}
			for _, a := range in.LookupAttributes {
				switch a.AttributeKey {
				case "EventName":
					f.EventName = a.AttributeValue
				case "Username":
					f.UserName = a.AttributeValue
				default:
					return nil, apierr.WithCode(apierr.InvalidInput, "InvalidLookupAttributesException", "Lookup attribute %q is not supported; use EventName or Username", a.AttributeKey)
				}
			}
			if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
				return nil, apierr.WithCode(apierr.InvalidInput, "InvalidTimeRangeException", "EndTime is before StartTime")
			}
			if err := c.authorize("*", nil); err != nil {
				return nil, err
			}
			evs, next, err := c.h.deps.AuditLog.Lookup(c.ctx, f)
			if err != nil {
				if apierr.KindOf(err) == apierr.InvalidInput {
					return nil, apierr.WithCode(apierr.InvalidInput, "InvalidNextTokenException", "Invalid NextToken")
				}
				return nil, err
			}
			out := lookupEventsOutput{Events: []ctEvent{}, NextToken: next}
			for _, e := range evs {
				ro := "false"
				var rec struct {
					ReadOnly bool `json:"readOnly"`
				}
				if json.Unmarshal(e.Record, &rec) == nil && rec.ReadOnly {
					ro = "true"
				}
				out.Events = append(out.Events, ctEvent{
					EventID: e.ID, EventName: e.Name, ReadOnly: ro, AccessKeyID: e.AccessKeyID,
					EventTime: float64(e.Time.UnixNano()) / 1e9, EventSource: e.Source, Username: e.UserName,
					Resources: []string{}, CloudTrailEvent: string(e.Record),
				})
			}
			return out, nil
		}},
	}
}
