package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/awsapi"
	"github.com/kaginashi/kaginashi/internal/iam"
	"github.com/kaginashi/kaginashi/internal/recording"
	"github.com/kaginashi/kaginashi/policy"
)

// --- POST /console/api/aws -------------------------------------------------

type awsRequest struct {
	Service string          `json:"service"`
	Action  string          `json:"action"`
	Params  json.RawMessage `json:"params"`
}

var actionName = regexp.MustCompile(`^[A-Za-z0-9]{1,128}$`)

func (c *Console) handleAWS(w http.ResponseWriter, r *http.Request) {
	sess, p, ok := c.session(w, r, true, r.Header.Get("X-CSRF-Token"))
	if !ok {
		return
	}
	var req awsRequest
	if !readJSON(w, r, &req) {
		return
	}
	if !actionName.MatchString(req.Action) {
		writeError(w, http.StatusBadRequest, "InvalidInput", "action must be an operation name such as ListUsers.")
		return
	}
	var form url.Values
	var body []byte
	switch req.Service {
	case "iam", "sts", "ec2":
		var err error
		if form, err = queryParams(req.Params); err != nil {
			writeError(w, http.StatusBadRequest, "InvalidInput", err.Error())
			return
		}
	case "ec2-instance-connect", "cloudtrail", "kaginashi":
		body = bytes.TrimSpace(req.Params)
		if len(body) == 0 || bytes.Equal(body, []byte("null")) {
			body = []byte("{}")
		}
		if body[0] != '{' {
			writeError(w, http.StatusBadRequest, "InvalidInput", "params of a JSON service is the action's input object.")
			return
		}
	default:
		writeError(w, http.StatusBadRequest, "InvalidInput", "service must be one of iam, sts, ec2, ec2-instance-connect, cloudtrail, kaginashi.")
		return
	}
	ctx := awsapi.WithConsoleSession(r.Context(), sess.Created)
	result, err := c.deps.API.Invoke(ctx, p, c.requestInfo(r), req.Service, req.Action, form, body)
	if err != nil {
		writeInvokeError(w, c.deps.Log, err)
		return
	}
	raw, err := awsapi.ResultJSON(req.Service, result)
	if err != nil {
		c.deps.Log.Error("console: encoding a result", "action", req.Action, "err", err)
		writeError(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]json.RawMessage{"result": raw})
}

// queryParams reads a Query service's flat parameters: an object of
// strings (numbers and booleans are taken as their text).
func queryParams(raw json.RawMessage) (url.Values, error) {
	form := url.Values{}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return form, nil
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, errors.New("params of a Query service is an object of flat AWS Query parameters")
	}
	for k, v := range m {
		switch x := v.(type) {
		case string:
			form.Set(k, x)
		case json.Number:
			form.Set(k, x.String())
		case bool:
			form.Set(k, strconv.FormatBool(x))
		default:
			return nil, fmt.Errorf("params.%s: Query parameters are flat strings (lists are Name.member.N, Name.N)", k)
		}
	}
	return form, nil
}

// --- POST /console/api/validate-policy -------------------------------------

// finding is a validator finding in the console's words.
type finding struct {
	FindingType   string `json:"findingType"`
	Code          string `json:"code"`
	Message       string `json:"message"`
	Path          string `json:"path"`
	Line          int    `json:"line,omitempty"`
	Column        int    `json:"column,omitempty"`
	LearnMoreLink string `json:"learnMoreLink,omitempty"`
}

func findingsOf(fs []policy.Finding) []finding {
	if fs == nil {
		return nil
	}
	out := make([]finding, 0, len(fs))
	for _, f := range fs {
		out = append(out, finding{FindingType: string(f.Type), Code: f.Code, Message: f.Message, Path: f.Path, Line: f.Line, Column: f.Column})
	}
	return out
}

func (c *Console) handleValidate(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := c.session(w, r, true, r.Header.Get("X-CSRF-Token")); !ok {
		return
	}
	var req struct {
		Document string `json:"document"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	fs, err := c.deps.IAM.ValidatePolicy(req.Document)
	if err != nil && apierr.KindOf(err) != apierr.MalformedPolicy {
		ae := apierr.As(err)
		writeError(w, http.StatusBadRequest, "LimitExceeded", ae.Message)
		return
	}
	out := findingsOf(fs)
	if out == nil {
		out = []finding{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"findings": out})
}

// --- instances -------------------------------------------------------------

type instanceJSON struct {
	InstanceID        string            `json:"instanceId"`
	Name              string            `json:"name"`
	State             string            `json:"state"`
	Connected         bool              `json:"connected"`
	SSHPort           int               `json:"sshPort,omitempty"` // sshd's port, while the agent is connected
	OSID              string            `json:"osId"`
	OSVersion         string            `json:"osVersion"`
	OSPrettyName      string            `json:"osPrettyName"`
	DefaultUser       string            `json:"defaultUser"`
	DefaultUserExists bool              `json:"defaultUserExists"`
	PrivateIP         string            `json:"privateIp"`
	IPv6              string            `json:"ipv6"`
	AgentVersion      string            `json:"agentVersion"`
	SigningKeyProblem string            `json:"signingKeyProblem,omitempty"` // why logins with pushed keys fail there, as the connected agent reports it
	LastSeen          string            `json:"lastSeen"`
	LaunchTime        string            `json:"launchTime"`
	Tags              map[string]string `json:"tags"`
}

func isoOrEmpty(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// instanceList reads the inventory (the caller has authorized).
func (c *Console) instanceList(r *http.Request) ([]instanceJSON, error) {
	pg, err := c.deps.Inventory.Describe(r.Context(), nil, nil, 0, "")
	if err != nil {
		return nil, err
	}
	out := make([]instanceJSON, 0, len(pg.Instances))
	for _, in := range pg.Instances {
		j := instanceJSON{InstanceID: in.ID, State: in.State, OSID: in.OSID, OSVersion: in.OSVersion, OSPrettyName: in.OSPrettyName,
			DefaultUser: in.DefaultUser, DefaultUserExists: in.DefaultUserExists, PrivateIP: in.PrivateIP, IPv6: in.IPv6,
			AgentVersion: in.AgentVersion, LastSeen: isoOrEmpty(in.LastSeen), LaunchTime: isoOrEmpty(in.LaunchTime), Tags: map[string]string{}}
		if c.deps.Tunnels != nil {
			j.Connected = c.deps.Tunnels.Connected(in.ID)
			j.SSHPort = c.reportedSSHPort(in.ID)
			j.SigningKeyProblem = c.signingKeyProblem(in.ID)
		}
		for _, t := range in.Tags {
			j.Tags[t.Key] = t.Value
			if t.Key == "Name" {
				j.Name = t.Value
			}
		}
		out = append(out, j)
	}
	sort.Slice(out, func(i, k int) bool { return out[i].InstanceID < out[k].InstanceID })
	return out, nil
}

// listInstances authorizes ec2:DescribeInstances (audited as that call)
// and reads the inventory.
func (c *Console) listInstances(r *http.Request, sess Session, p *iam.Principal) ([]instanceJSON, error) {
	ctx := awsapi.WithConsoleSession(r.Context(), sess.Created)
	res, err := c.deps.API.InvokeOperation(ctx, p, c.requestInfo(r), awsapi.Operation{
		Service: "ec2", Name: "DescribeInstances", Action: "ec2:DescribeInstances", ReadOnly: true,
		Params: map[string]any{"console": true},
		Run: func(call *awsapi.Call) (any, error) {
			if err := call.Authorize("*", nil); err != nil {
				return nil, err
			}
			return c.instanceList(r)
		},
	})
	if err != nil {
		return nil, err
	}
	return res.([]instanceJSON), nil
}

func (c *Console) handleInstances(w http.ResponseWriter, r *http.Request) {
	sess, p, ok := c.session(w, r, false, "")
	if !ok {
		return
	}
	list, err := c.listInstances(r, sess, p)
	if err != nil {
		writeInvokeError(w, c.deps.Log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"instances": list})
}

// Watch timing: the inventory is read every watchPoll and sent when it
// changed, and at least every watchBeat (a heartbeat through proxies).
const (
	watchPoll = 2 * time.Second
	watchBeat = 15 * time.Second
)

// handleWatch streams the instance list as Server-Sent Events. The
// stream is authorized and audited once as ec2:DescribeInstances; each
// later read is re-authorized (a policy change or a deleted user ends
// the stream with an error event) and ends when the session does.
func (c *Console) handleWatch(w http.ResponseWriter, r *http.Request) {
	sess, p, ok := c.session(w, r, false, "")
	if !ok {
		return
	}
	list, err := c.listInstances(r, sess, p)
	if err != nil {
		writeInvokeError(w, c.deps.Log, err)
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	var last []byte
	send := func(event string, v any) bool {
		b, _ := json.Marshal(v)
		_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return false
		}
		if event == "instances" {
			last = b
		}
		return rc.Flush() == nil
	}
	if !send("instances", map[string]any{"instances": list}) {
		return
	}
	lastSent := time.Now()
	tick := time.NewTicker(watchPoll)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
		if !c.sessions.Alive(sess, false) {
			send("error", apiError{Code: "NotSignedIn", Message: "The session ended; sign in again."})
			return
		}
		p, err := c.principal(r.Context(), sess)
		if err != nil {
			send("error", apiError{Code: "NotSignedIn", Message: "The session ended; sign in again."})
			return
		}
		info := c.requestInfo(r)
		d, err := c.deps.Authz.Authorize(r.Context(), p, "ec2:DescribeInstances", "*", iam.BaseContext(p, info))
		if err != nil || !d.Allowed {
			// Once more through the audited path, which records the
			// denial and words it.
			_, err := c.listInstances(r, sess, p)
			e := apiError{Code: "AccessDenied", Message: "Not authorized to list instances any more."}
			var ie *awsapi.InvokeError
			if errors.As(err, &ie) {
				e = apiError{Code: ie.Code, Message: ie.Message}
			}
			send("error", e)
			return
		}
		list, err := c.instanceList(r)
		if err != nil {
			c.deps.Log.Warn("console: reading instances for a watch", "err", err)
			continue
		}
		b, _ := json.Marshal(map[string]any{"instances": list})
		if !bytes.Equal(b, last) || time.Since(lastSent) >= watchBeat {
			if !send("instances", json.RawMessage(b)) {
				return
			}
			lastSent = time.Now()
		}
	}
}

// --- recordings ------------------------------------------------------------

// RecordingARN is a recording's resource ARN.
func (c *Console) RecordingARN(id string) string {
	return "arn:aws:kaginashi:" + c.cfg.Region + ":" + c.cfg.Account + ":recording/" + id
}

func parseTimeParam(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time (RFC 3339 or Unix seconds)", v)
}

func (c *Console) handleRecordings(w http.ResponseWriter, r *http.Request) {
	sess, p, ok := c.session(w, r, false, "")
	if !ok {
		return
	}
	q := r.URL.Query()
	f := recording.Filter{UserName: q.Get("user"), InstanceID: q.Get("instanceId")}
	var err error
	if f.From, err = parseTimeParam(q.Get("from")); err == nil {
		f.To, err = parseTimeParam(q.Get("to"))
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidInput", err.Error())
		return
	}
	ctx := awsapi.WithConsoleSession(r.Context(), sess.Created)
	res, err := c.deps.API.InvokeOperation(ctx, p, c.requestInfo(r), awsapi.Operation{
		Service: "kaginashi", Name: "ListSessionRecordings", Action: "kaginashi:ListSessionRecordings", ReadOnly: true,
		Params: map[string]any{"user": f.UserName, "instanceId": f.InstanceID, "from": q.Get("from"), "to": q.Get("to")},
		Run: func(call *awsapi.Call) (any, error) {
			if err := call.Authorize("*", nil); err != nil {
				return nil, err
			}
			l, err := recording.List(c.recDir, f)
			if err != nil {
				return nil, apierr.Wrap(err, "listing recordings")
			}
			return l, nil
		},
	})
	if err != nil {
		writeInvokeError(w, c.deps.Log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"recordings": res})
}

func (c *Console) handleRecording(w http.ResponseWriter, r *http.Request) {
	sess, p, ok := c.session(w, r, false, "")
	if !ok {
		return
	}
	id := r.PathValue("id")
	if len(id) > 64 {
		id = id[:64]
	}
	ctx := awsapi.WithConsoleSession(r.Context(), sess.Created)
	res, err := c.deps.API.InvokeOperation(ctx, p, c.requestInfo(r), awsapi.Operation{
		Service: "kaginashi", Name: "GetSessionRecording", Action: "kaginashi:GetSessionRecording", ReadOnly: true,
		Params: map[string]any{"recordingId": id},
		Run: func(call *awsapi.Call) (any, error) {
			if err := call.Authorize(c.RecordingARN(id), nil); err != nil {
				return nil, err
			}
			f, err := recording.Open(c.recDir, id)
			if errors.Is(err, os.ErrNotExist) {
				return nil, apierr.New(apierr.NotFound, "Recording %s does not exist.", id)
			}
			if err != nil {
				return nil, apierr.Wrap(err, "opening a recording")
			}
			return f, nil
		},
	})
	if err != nil {
		writeInvokeError(w, c.deps.Log, err)
		return
	}
	f := res.(*os.File)
	defer f.Close()
	w.Header().Set("Content-Type", "application/x-asciicast")
	w.Header().Set("Content-Disposition", `attachment; filename="`+id+`.cast"`)
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(5 * time.Minute))
	_, _ = io.Copy(w, f)
}
