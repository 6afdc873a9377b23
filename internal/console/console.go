// Package console is the web console's server side (issue #6): sign-in
// with IAM users' console passwords (and TOTP), sessions in cookies with
// CSRF protection, a JSON API that runs every AWS action through
// awsapi.Handler.Invoke — the AWS API's own path after authentication —
// the instance list with live updates, the browser terminal (an SSH
// client in the server, bridged to xterm.js over a WebSocket) and its
// recordings. docs/CONSOLE-API.md is the contract with the front end.
package console

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kaginashi/kaginashi/internal/audit"
	"github.com/kaginashi/kaginashi/internal/awsapi"
	"github.com/kaginashi/kaginashi/internal/clientip"
	"github.com/kaginashi/kaginashi/internal/iam"
	"github.com/kaginashi/kaginashi/internal/inventory"
	"github.com/kaginashi/kaginashi/internal/store"
)

// CookieName is the session cookie.
const CookieName = "kaginashi_session"

// maxJSONBody bounds the console's request bodies (the AWS API's own
// limit: the largest is a policy document).
const maxJSONBody = awsapi.MaxBody

// Config is the deployment as the console needs it.
type Config struct {
	Account string
	Region  string
	// PublicURL is the server's URL; its origin is accepted besides the
	// request's own Host.
	PublicURL string
	// DataDir holds recordings/ (0700; each recording 0600).
	DataDir string
	// Insecure: plain HTTP (cookies without Secure).
	Insecure bool
	// Proxies are the reverse proxies trusted to say who the client is
	// and whether it came over TLS (nil: none).
	Proxies  *clientip.Resolver
	Sessions SessionConfig
	// RecordInput records keystrokes too (off by default: they include
	// what people type at prompts that do not echo, such as sudo's).
	RecordInput bool
	// MaxTerminals bounds the terminal sessions this server holds at once
	// (default 1000), MaxTerminalsPerUser one user's (default 10).
	MaxTerminals        int
	MaxTerminalsPerUser int
}

// Tunneler opens a connection to a port of an instance through its agent
// (gateway.Gateway).
type Tunneler interface {
	OpenTunnel(ctx context.Context, instanceID string, port int) (io.ReadWriteCloser, error)
	Connected(instanceID string) bool
}

// sshPortReporter knows the port each host's sshd listens on, as its
// agent reported it (gateway.Gateway).
type sshPortReporter interface {
	SSHPort(instanceID string) (int, bool)
}

// reportedSSHPort is the instance's sshd port as its agent reported it;
// 0 when unknown.
func (c *Console) reportedSSHPort(instanceID string) int {
	if r, ok := c.deps.Tunnels.(sshPortReporter); ok {
		if p, ok := r.SSHPort(instanceID); ok {
			return p
		}
	}
	return 0
}

// sshPort is the reported port, else 22.
func (c *Console) sshPort(instanceID string) int {
	if p := c.reportedSSHPort(instanceID); p > 0 {
		return p
	}
	return 22
}

// Deps are the services behind the console.
type Deps struct {
	API       *awsapi.Handler
	IAM       *iam.Service
	Authz     *iam.Authorizer
	Store     store.Store
	Inventory *inventory.Service
	Tunnels   Tunneler
	Audit     audit.Recorder
	// Assets is the front end: index.html and assets/ (internal/webui).
	Assets fs.FS
	Log    *slog.Logger
	Now    func() time.Time
	// Unauthenticated bounds the audit rows of sign-ins refused before
	// any password check (TooManyAttempts: cheap to send in a flood) per
	// source address, as for the API's unauthenticated calls (nil: every
	// one is audited).
	Unauthenticated interface {
		Admit(source, code string) bool
	}
}

// Console serves the web console.
type Console struct {
	cfg       Config
	deps      Deps
	sessions  *Sessions
	limiter   *Limiter
	dummyHash string        // verified for unknown users, so timing does not reveal who exists
	hashSlots chan struct{} // bounds concurrent password hashing (19 MiB each)
	recDir    string
	origins   []string

	termMu    sync.Mutex
	terminals map[string]int // open terminal sessions by principal ARN
	termTotal int
}

// New makes the console. It hashes one dummy password (tens of
// milliseconds).
func New(cfg Config, deps Deps) (*Console, error) {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.API == nil || deps.IAM == nil || deps.Authz == nil || deps.Store == nil || deps.Inventory == nil || deps.Audit == nil {
		return nil, errors.New("console: missing dependencies")
	}
	pw, err := randomToken()
	if err != nil {
		return nil, err
	}
	dummy, err := iam.HashPassword("Aa1!" + pw)
	if err != nil {
		return nil, err
	}
	c := &Console{cfg: cfg, deps: deps, sessions: NewSessions(cfg.Sessions, deps.Now), limiter: NewLimiter(deps.Now),
		dummyHash: dummy, hashSlots: make(chan struct{}, 4), recDir: filepath.Join(cfg.DataDir, "recordings"), terminals: map[string]int{}}
	if c.cfg.MaxTerminals <= 0 {
		c.cfg.MaxTerminals = 1000
	}
	if c.cfg.MaxTerminalsPerUser <= 0 {
		c.cfg.MaxTerminalsPerUser = 10
	}
	if u, err := url.Parse(cfg.PublicURL); err == nil && u.Host != "" {
		c.origins = append(c.origins, u.Scheme+"://"+u.Host)
	}
	return c, nil
}

// Sessions is the session table (for tests).
func (c *Console) Sessions() *Sessions { return c.sessions }

// Limiter is the sign-in limiter (for tests).
func (c *Console) Limiter() *Limiter { return c.limiter }

// Routes registers the console's routes on mux. GET / is the caller's to
// route (see IsAPIRequest and ServeIndex): it is also the AWS API's.
func (c *Console) Routes(mux *http.ServeMux) {
	api := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, c.secure(h, false)) }
	api("POST /console/api/signin", c.handleSignin)
	api("POST /console/api/signout", c.handleSignout)
	api("GET /console/api/session", c.handleSession)
	api("POST /console/api/aws", c.handleAWS)
	api("POST /console/api/validate-policy", c.handleValidate)
	api("GET /console/api/instances", c.handleInstances)
	api("GET /console/api/instances/watch", c.handleWatch)
	api("GET /console/api/terminal", c.handleTerminal)
	api("GET /console/api/recordings", c.handleRecordings)
	api("GET /console/api/recordings/{id}", c.handleRecording)
	notFound := func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NotFound", "No console API at "+r.Method+" "+r.URL.Path+".")
	}
	// Per method: a method-less pattern would conflict with GET /console/.
	api("GET /console/api/", notFound)
	api("POST /console/api/", notFound)
	mux.Handle("GET /console/", c.secure(c.ServeIndex, true))
	mux.Handle("GET /assets/", c.secure(c.serveAsset, true))
}

// IsAPIRequest reports whether a GET / is an AWS API call (a signed or
// presigned Query request) rather than a browser asking for the console:
// a browser's navigation accepts text/html; API clients (and a bare curl,
// which then gets the API's MissingAuthenticationToken) do not ask for it.
func IsAPIRequest(r *http.Request) bool {
	if r.Header.Get("Authorization") != "" || r.Header.Get("X-Amz-Target") != "" {
		return true
	}
	q := r.URL.Query()
	if q.Has("Action") || q.Has("X-Amz-Credential") || q.Has("X-Amz-Signature") || q.Has("X-Amz-Algorithm") {
		return true
	}
	return !strings.Contains(r.Header.Get("Accept"), "text/html")
}

// csp is the pages' Content-Security-Policy: nothing but the server's own
// scripts, styles and connections; never framed.
const csp = "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"

// secure sets the security headers of every console response.
func (c *Console) secure(h http.HandlerFunc, page bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		if c.cfg.Proxies.Secure(r) {
			hd.Set("Strict-Transport-Security", "max-age=31536000")
		}
		if !page {
			hd.Set("Cache-Control", "no-store")
		}
		h(w, r)
	})
}

// ServeIndex answers the single-page app's index.html (for every client
// route).
func (c *Console) ServeIndex(w http.ResponseWriter, r *http.Request) {
	c.secure(func(w http.ResponseWriter, r *http.Request) {
		b, err := fs.ReadFile(c.deps.Assets, "index.html")
		if err != nil {
			http.Error(w, "the console's front end is not built into this binary", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(b)
	}, true).ServeHTTP(w, r)
}

// serveAsset answers GET /assets/*: content-hashed names, cached long.
func (c *Console) serveAsset(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
	if !strings.HasPrefix(p, "assets/") || !fs.ValidPath(p) {
		http.NotFound(w, r)
		return
	}
	fi, err := fs.Stat(c.deps.Assets, p)
	if err != nil || fi.IsDir() {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	http.ServeFileFS(w, r, c.deps.Assets, p)
}

// --- requests --------------------------------------------------------------

func (c *Console) clientIP(r *http.Request) string { return c.cfg.Proxies.IP(r) }

func (c *Console) requestInfo(r *http.Request) iam.RequestInfo {
	return iam.RequestInfo{SourceIP: c.clientIP(r), UserAgent: r.UserAgent(), Secure: c.cfg.Proxies.Secure(r), Time: c.deps.Now().UTC(), Region: c.cfg.Region}
}

// sameOrigin checks the Origin header of a state-changing request: the
// server's own (the request's Host, or the public URL's).
func (c *Console) sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	scheme := "http"
	if c.cfg.Proxies.Secure(r) {
		scheme = "https"
	}
	if strings.EqualFold(o, scheme+"://"+r.Host) {
		return true
	}
	for _, a := range c.origins {
		if strings.EqualFold(o, a) {
			return true
		}
	}
	return false
}

// errNotSignedIn answers 401.
func writeNotSignedIn(w http.ResponseWriter) {
	writeError(w, http.StatusUnauthorized, "NotSignedIn", "Sign in first; the session may have expired.")
}

// session returns the request's live session and the principal it acts
// as. It checks CSRF (token and Origin) for anything but GET and HEAD;
// csrf is the token sent (header or, for the WebSocket, query). It
// answers the error itself when it returns ok false.
func (c *Console) session(w http.ResponseWriter, r *http.Request, stateChanging bool, csrf string) (Session, *iam.Principal, bool) {
	ck, err := r.Cookie(CookieName)
	if err != nil {
		writeNotSignedIn(w)
		return Session{}, nil, false
	}
	sess, err := c.sessions.Get(ck.Value, true)
	if err != nil {
		writeNotSignedIn(w)
		return Session{}, nil, false
	}
	if stateChanging && (!CheckCSRF(sess, csrf) || !c.sameOrigin(r)) {
		writeError(w, http.StatusForbidden, "InvalidCSRFToken", "The request lacks the session's CSRF token or comes from another origin.")
		return Session{}, nil, false
	}
	p, err := c.principal(r.Context(), sess)
	if errors.Is(err, ErrNoSession) {
		c.sessions.Delete(ck.Value)
		writeNotSignedIn(w)
		return Session{}, nil, false
	}
	if err != nil {
		c.deps.Log.Error("console: resolving the session's principal", "err", err)
		writeError(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
		return Session{}, nil, false
	}
	return sess, p, true
}

// principal is who a session acts as, read afresh (tags, a deleted user).
func (c *Console) principal(ctx context.Context, sess Session) (*iam.Principal, error) {
	if sess.Root {
		return &iam.Principal{Account: c.cfg.Account, Root: true, UserID: c.cfg.Account, ARN: iam.RootARN(c.cfg.Account), Console: true, MFA: sess.MFA}, nil
	}
	u, err := c.deps.Store.GetUser(ctx, sess.UserName)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.ID != sess.UserID) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, err
	}
	// A session is the password's: deleting the user's login profile
	// (the console password) ends it, as deleting the user does; and so
	// does another profile than the one the session began with — the old
	// one deleted and a new one set (a leaked password reset) before this
	// session's next request, which would otherwise never see it gone.
	lp, err := c.deps.Store.GetLoginProfile(ctx, u.Name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrNoSession
	case err != nil:
		return nil, err
	case !lp.CreateDate.Equal(sess.ProfileCreated):
		return nil, ErrNoSession
	}
	return &iam.Principal{Account: c.cfg.Account, UserName: u.Name, UserID: u.ID, ARN: iam.UserARN(c.cfg.Account, u.Path, u.Name),
		Tags: u.Tags, Console: true, MFA: sess.MFA}, nil
}

// --- answers ---------------------------------------------------------------

// apiError is the console's error body.
type apiError struct {
	Code              string    `json:"code"`
	Message           string    `json:"message"`
	Findings          []finding `json:"findings,omitempty"`
	RetryAfterSeconds int       `json:"retryAfterSeconds,omitempty"`
	RequestID         string    `json:"requestId,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding the answer failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]apiError{"error": {Code: code, Message: msg}})
}

func writeAPIError(w http.ResponseWriter, status int, e apiError) {
	writeJSON(w, status, map[string]apiError{"error": e})
}

// writeInvokeError answers an Invoke error with the AWS code and status.
func writeInvokeError(w http.ResponseWriter, log *slog.Logger, err error) {
	var ie *awsapi.InvokeError
	if !errors.As(err, &ie) {
		log.Error("console: call failed", "err", err)
		writeError(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
		return
	}
	writeAPIError(w, ie.Status, apiError{Code: ie.Code, Message: ie.Message, Findings: findingsOf(ie.Findings), RequestID: ie.RequestID})
}

// readJSON decodes a bounded JSON body into v; false after answering 400.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "InvalidInput", "Send JSON (Content-Type: application/json).")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "InvalidInput", "The request body is too large.")
			return false
		}
		writeError(w, http.StatusBadRequest, "InvalidInput", "The request body is not the expected JSON: "+err.Error())
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "InvalidInput", "The request body has text after the JSON object.")
		return false
	}
	return true
}

func ceilSeconds(d time.Duration) int { return int(math.Ceil(d.Seconds())) }

// takeTerminal reserves a terminal slot for who; false at a bound.
func (c *Console) takeTerminal(who string) bool {
	c.termMu.Lock()
	defer c.termMu.Unlock()
	if c.termTotal >= c.cfg.MaxTerminals || c.terminals[who] >= c.cfg.MaxTerminalsPerUser {
		return false
	}
	c.termTotal++
	c.terminals[who]++
	return true
}

func (c *Console) releaseTerminal(who string) {
	c.termMu.Lock()
	defer c.termMu.Unlock()
	c.termTotal--
	if c.terminals[who]--; c.terminals[who] <= 0 {
		delete(c.terminals, who)
	}
}
