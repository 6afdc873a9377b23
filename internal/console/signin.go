package console

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/kaginashi/kaginashi/internal/audit"
	"github.com/kaginashi/kaginashi/internal/awsapi"
	"github.com/kaginashi/kaginashi/internal/iam"
	"github.com/kaginashi/kaginashi/internal/store"
)

// RootUserName is the user name the account root signs in with.
const RootUserName = "root"

type signinRequest struct {
	AccountID string `json:"accountId"`
	UserName  string `json:"userName"`
	Password  string `json:"password"`
	MFACode   string `json:"mfaCode"`
}

// sessionJSON is the session object of the contract.
type sessionJSON struct {
	AccountID     string    `json:"accountId"`
	UserName      string    `json:"userName"`
	ARN           string    `json:"arn"`
	Root          bool      `json:"root"`
	MFA           bool      `json:"mfa"`
	CSRFToken     string    `json:"csrfToken"`
	ExpiresAt     time.Time `json:"expiresAt"`
	IdleExpiresAt time.Time `json:"idleExpiresAt"`
	Region        string    `json:"region"`
}

func (c *Console) sessionObject(sess Session) sessionJSON {
	arn := iam.RootARN(c.cfg.Account)
	if !sess.Root {
		// The path is not kept in the session; the principal has it.
		if p, err := c.principal(context.Background(), sess); err == nil {
			arn = p.ARN
		} else {
			arn = iam.UserARN(c.cfg.Account, "/", sess.UserName)
		}
	}
	return sessionJSON{AccountID: sess.Account, UserName: sess.UserName, ARN: arn, Root: sess.Root, MFA: sess.MFA, CSRFToken: sess.CSRF,
		ExpiresAt: sess.Expiry(c.sessions.cfg.Absolute).UTC(), IdleExpiresAt: c.sessions.IdleExpiry(sess).UTC(), Region: c.cfg.Region}
}

// signinOutcome is what a sign-in attempt came to, for the answer and the
// audit event.
type signinOutcome struct {
	ok          bool
	mfaRequired bool
	who         Session // on success, and for the audit event when the user exists
	known       bool    // the user exists (the event may name it)
	mfaUsed     bool
}

func (c *Console) handleSignin(w http.ResponseWriter, r *http.Request) {
	// Login CSRF: a sign-in from another site's page would sign the
	// victim in as the attacker.
	if !c.sameOrigin(r) {
		writeError(w, http.StatusForbidden, "InvalidOrigin", "Sign-in requests must come from the console's own page.")
		return
	}
	var req signinRequest
	if !readJSON(w, r, &req) {
		return
	}
	req.UserName = strings.TrimSpace(req.UserName)
	req.AccountID = strings.TrimSpace(req.AccountID)
	if req.UserName == "" || req.Password == "" || len(req.UserName) > 64 || len(req.Password) > 1024 || len(req.MFACode) > 16 {
		writeError(w, http.StatusBadRequest, "InvalidInput", "Give the account ID, the user name and the password.")
		return
	}
	info := c.requestInfo(r)
	// Failures count per source address and per user name. Not per name
	// for root, whose "password" is the root secret access key (40 random
	// characters: nobody guesses it), where a per-name lock would only let
	// anyone lock the account's owner out of the console. Root is the
	// name exactly as verify tells it: any other spelling (ROOT) is an IAM
	// user's name, which the store finds whatever its case, and that
	// user's password can be guessed.
	// An IPv6 source is its /64, which one host holds all of (as the
	// audit budget counts it): per address, a guesser would never back off.
	ipKey, userKey := "ip:"+audit.BudgetSource(info.SourceIP), ""
	keys := []string{ipKey}
	if req.UserName != RootUserName {
		userKey = "user:" + strings.ToLower(req.UserName)
		keys = append(keys, userKey)
	}
	if wait := c.limiter.Attempt(keys...); wait > 0 {
		secs := ceilSeconds(wait)
		if u := c.deps.Unauthenticated; u == nil || u.Admit(info.SourceIP, "TooManyAttempts") {
			c.auditSignin(r.Context(), info, req.UserName, signinOutcome{}, "TooManyAttempts", "Too many failed sign-in attempts")
		}
		w.Header().Set("Retry-After", itoa(secs))
		writeAPIError(w, http.StatusTooManyRequests, apiError{Code: "TooManyAttempts",
			Message: "Too many failed sign-in attempts. Try again in " + itoa(secs) + " s.", RetryAfterSeconds: secs})
		return
	}

	out, err := c.verify(r.Context(), req)
	if err != nil {
		c.limiter.Forgive(keys...) // the server's failure, not the caller's
		c.deps.Log.Error("console: sign-in failed on the server's side", "err", err)
		writeError(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
		return
	}
	switch {
	case out.mfaRequired:
		// The password was right: not a failure, but no session yet.
		c.limiter.Forgive(keys...)
		c.auditSignin(r.Context(), info, req.UserName, out, "MFARequired", "MFA code required")
		writeError(w, http.StatusUnauthorized, "MFARequired", "This user has an MFA device: enter the code it shows.")
		return
	case !out.ok:
		c.auditSignin(r.Context(), info, req.UserName, out, "InvalidCredentials", "Failed authentication")
		writeError(w, http.StatusUnauthorized, "InvalidCredentials", "The account ID, user name, password or MFA code is wrong.")
		return
	}
	token, sess, err := c.sessions.Create(out.who)
	if err != nil {
		c.deps.Log.Error("console: making a session", "err", err)
		writeError(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
		return
	}
	// No session without its audit event.
	if err := c.auditSignin(r.Context(), info, req.UserName, out, "", ""); err != nil {
		c.sessions.Delete(token)
		writeError(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error (the sign-in could not be audited). Please try again.")
		return
	}
	if userKey != "" {
		c.limiter.Succeeded(userKey, ipKey)
	} else {
		c.limiter.Forgive(ipKey)
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: token, Path: "/", HttpOnly: true, Secure: !c.cfg.Insecure,
		SameSite: http.SameSiteStrictMode, MaxAge: int(c.sessions.cfg.Absolute / time.Second)})
	writeJSON(w, http.StatusOK, c.sessionObject(sess))
}

// verify checks the credentials. Unknown users cost a password hash too,
// so that the answer's timing does not tell who exists.
func (c *Console) verify(ctx context.Context, req signinRequest) (signinOutcome, error) {
	select {
	case c.hashSlots <- struct{}{}:
		defer func() { <-c.hashSlots }()
	case <-ctx.Done():
		return signinOutcome{}, ctx.Err()
	}
	accountOK := subtle.ConstantTimeCompare([]byte(req.AccountID), []byte(c.cfg.Account)) == 1
	if req.UserName == RootUserName {
		ok, err := c.verifyRoot(ctx, req.Password)
		if err != nil {
			return signinOutcome{}, err
		}
		who := Session{Account: c.cfg.Account, UserName: RootUserName, Root: true}
		return signinOutcome{ok: ok && accountOK, who: who, known: true}, nil
	}
	u, err := c.deps.Store.GetUser(ctx, req.UserName)
	known := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return signinOutcome{}, err
	}
	hash := c.dummyHash
	hasProfile := false
	var profileCreated time.Time
	if known {
		lp, err := c.deps.Store.GetLoginProfile(ctx, u.Name)
		switch {
		case err == nil:
			hash, hasProfile, profileCreated = lp.PasswordHash, true, lp.CreateDate
		case !errors.Is(err, store.ErrNotFound):
			return signinOutcome{}, err
		}
	}
	pwOK := iam.VerifyPassword(hash, req.Password) && hasProfile && accountOK
	out := signinOutcome{known: known, who: Session{Account: c.cfg.Account, UserName: u.Name, UserID: u.ID, ProfileCreated: profileCreated}}
	if !pwOK {
		return out, nil
	}
	hasMFA, err := c.deps.IAM.UserHasMFA(ctx, u.Name)
	if err != nil {
		return signinOutcome{}, err
	}
	if hasMFA {
		if strings.TrimSpace(req.MFACode) == "" {
			out.mfaRequired = true
			return out, nil
		}
		ok, err := c.deps.IAM.VerifyMFACode(ctx, u.Name, strings.TrimSpace(req.MFACode))
		if err != nil {
			return signinOutcome{}, err
		}
		out.mfaUsed = true
		if !ok {
			return out, nil
		}
		out.who.MFA = true
	}
	out.ok = true
	return out, nil
}

// verifyRoot compares the password with every active root access key's
// secret, in constant time (over SHA-256s, so lengths do not show).
func (c *Console) verifyRoot(ctx context.Context, password string) (bool, error) {
	keys, err := c.deps.Store.ListAccessKeys(ctx, "")
	if err != nil {
		return false, err
	}
	given := sha256.Sum256([]byte(password))
	match := 0
	for _, k := range keys {
		if k.Status != store.StatusActive || k.UserName != "" {
			continue
		}
		secret, _, err := c.deps.Authz.Credentials(ctx, k.ID)
		if errors.Is(err, iam.ErrUnknownKey) {
			continue
		}
		if err != nil {
			return false, err
		}
		want := sha256.Sum256([]byte(secret))
		match |= subtle.ConstantTimeCompare(given[:], want[:])
	}
	return match == 1, nil
}

// auditSignin records a ConsoleLogin event in CloudTrail's shape: an
// AwsConsoleSignIn event from signin.amazonaws.com, responseElements
// ConsoleLogin Success/Failure, MFAUsed. A user that does not exist is
// not named (CloudTrail hides it: people type passwords into the user
// name field).
func (c *Console) auditSignin(ctx context.Context, info iam.RequestInfo, userName string, out signinOutcome, code, msg string) error {
	id := audit.Identity{Type: "IAMUser", AccountID: c.cfg.Account, UserName: audit.Hidden}
	switch {
	case userName == RootUserName:
		id = audit.Identity{Type: "Root", PrincipalID: c.cfg.Account, ARN: iam.RootARN(c.cfg.Account), AccountID: c.cfg.Account}
	case out.known:
		id = audit.Identity{Type: "IAMUser", PrincipalID: out.who.UserID, AccountID: c.cfg.Account, UserName: out.who.UserName}
		if p, err := c.principal(ctx, out.who); err == nil {
			id.ARN = p.ARN
		}
	}
	result, mfaUsed := "Success", "No"
	if code != "" {
		result = "Failure"
	}
	if out.mfaUsed {
		mfaUsed = "Yes"
	}
	ev := &audit.Event{
		EventTime: info.Time, EventSource: "signin.amazonaws.com", EventName: "ConsoleLogin", EventType: "AwsConsoleSignIn",
		AWSRegion: c.cfg.Region, SourceIPAddress: info.SourceIP, UserAgent: info.UserAgent, RequestID: uuid.NewString(),
		RecipientAccountID: c.cfg.Account, UserIdentity: id,
		ResponseElements:    map[string]any{"ConsoleLogin": result},
		AdditionalEventData: map[string]any{"LoginTo": strings.TrimSuffix(c.cfg.PublicURL, "/") + "/console/", "MobileVersion": "No", "MFAUsed": mfaUsed},
	}
	if code != "" {
		ev.ErrorCode, ev.ErrorMessage = code, msg
	}
	err := c.deps.Audit.Record(context.WithoutCancel(ctx), ev)
	if err != nil {
		c.deps.Log.Error("console: the sign-in event was not recorded", "err", err)
	}
	return err
}

func (c *Console) handleSignout(w http.ResponseWriter, r *http.Request) {
	ck, err := r.Cookie(CookieName)
	if err == nil {
		if sess, err := c.sessions.Get(ck.Value, false); err == nil {
			if !CheckCSRF(sess, r.Header.Get("X-CSRF-Token")) || !c.sameOrigin(r) {
				writeError(w, http.StatusForbidden, "InvalidCSRFToken", "The request lacks the session's CSRF token or comes from another origin.")
				return
			}
			c.sessions.Delete(ck.Value)
			if p, err := c.principal(r.Context(), sess); err == nil {
				info := c.requestInfo(r)
				_ = c.deps.API.RecordEvent(awsapi.WithConsoleSession(r.Context(), sess.Created), p, info, "kaginashi", "ConsoleLogout", nil, nil, "", "")
			}
		}
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true, Secure: !c.cfg.Insecure, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

func (c *Console) handleSession(w http.ResponseWriter, r *http.Request) {
	sess, _, ok := c.session(w, r, false, "")
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, c.sessionObject(sess))
}

func itoa(n int) string { return strconv.Itoa(n) }
