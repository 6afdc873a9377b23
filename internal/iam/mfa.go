package iam

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"image/png"
	"net/url"
	"regexp"
	"strings"

	// pquerna/otp computes the RFC 4226/6238 codes and renders the
	// otpauth:// QR code (through boombuler/barcode): small, widely used
	// and stable, so kaginashi carries no hand-written HOTP or QR encoder.
	// It is used only for the code of one given time step and for the
	// image; the window, replay protection and constant-time comparison
	// are kaginashi's, below, because they need the store.
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/store"
)

// Virtual MFA devices, as IAM's: CreateVirtualMFADevice makes a TOTP seed
// (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits, what every
// authenticator app speaks), EnableMFADevice assigns it to a user on two
// consecutive codes, and console sign-in checks codes with VerifyMFACode.
// The seed leaves the server once, in CreateVirtualMFADevice's answer; at
// rest it is sealed like access-key secrets, bound to the device's serial
// number.

const (
	totpPeriod = 30 // seconds per time step
	totpDigits = 6
	// totpSkew is how many steps either side of now a code may be from:
	// one, so that a code typed as it rolls over, or a phone clock a few
	// seconds off, still works.
	totpSkew = 1
	// mfaSeedBytes: 40 bytes is 64 base32 characters, the length of AWS's
	// Base32StringSeed (RFC 4226 asks for at least 16 bytes).
	mfaSeedBytes = 40
	// mfaIssuer labels the account in authenticator apps.
	mfaIssuer = "kaginashi"
	// mfaQRSize is the QR code's width and height in pixels.
	mfaQRSize = 256
)

var (
	b32NoPad   = base32.StdEncoding.WithPadding(base32.NoPadding)
	totpCodeRE = regexp.MustCompile(`^[0-9]{6}$`)
	serialRE   = regexp.MustCompile(`^[\w+=/:,.@-]{9,256}$`)
)

// MFASerial is a virtual MFA device's serial number, its ARN:
// arn:aws:iam::ACCOUNT:mfa/PATH/NAME.
func MFASerial(account, path, name string) string {
	return "arn:aws:iam::" + account + ":mfa" + path + name
}

// totpCode is the code of a seed at a time step.
func totpCode(seed []byte, step int64) (string, error) {
	return hotp.GenerateCodeCustom(b32NoPad.EncodeToString(seed), uint64(step), hotp.ValidateOpts{
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	})
}

// matchStep returns the latest step in [from, to] whose code is code, or
// -1. Every step is computed and compared in constant time, so the time
// taken says nothing about which step, if any, matched.
func matchStep(seed []byte, code string, from, to int64) (int64, error) {
	matched := int64(-1)
	for s := from; s <= to; s++ {
		want, err := totpCode(seed, s)
		if err != nil {
			return -1, err
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			matched = s
		}
	}
	return matched, nil
}

func (s *Service) step() int64 { return s.now().Unix() / totpPeriod }

// NewVirtualMFADevice is a created device with its seed: the only time
// the seed leaves the server.
type NewVirtualMFADevice struct {
	store.MFADevice
	// Base32Seed is the seed in base32 without padding, as authenticator
	// apps take it.
	Base32Seed string
	// QRCodePNG is a PNG of the otpauth:// URL with the seed.
	QRCodePNG []byte
}

// CreateVirtualMFADevice makes an unassigned virtual MFA device.
func (s *Service) CreateVirtualMFADevice(ctx context.Context, name, path string, tags []store.Tag) (NewVirtualMFADevice, error) {
	if err := checkName("virtual MFA device name", name, 226); err != nil {
		return NewVirtualMFADevice{}, err
	}
	path, err := defaultPath(path)
	if err != nil {
		return NewVirtualMFADevice{}, err
	}
	if err := checkTags(tags); err != nil {
		return NewVirtualMFADevice{}, err
	}
	seed := make([]byte, mfaSeedBytes)
	if _, err := rand.Read(seed); err != nil {
		return NewVirtualMFADevice{}, apierr.Wrap(err, "making the MFA seed")
	}
	serial := MFASerial(s.account, path, name)
	sealed, err := s.sealer.Seal(seed, serial)
	if err != nil {
		return NewVirtualMFADevice{}, apierr.Wrap(err, "sealing the MFA seed")
	}
	b32 := b32NoPad.EncodeToString(seed)
	qr, err := qrCodePNG(b32, name+"@"+s.account)
	if err != nil {
		return NewVirtualMFADevice{}, apierr.Wrap(err, "drawing the MFA QR code")
	}
	d := store.MFADevice{SerialNumber: serial, Name: name, Path: path, SeedCiphertext: sealed, CreateDate: s.now().UTC(), Tags: tags}
	if err := s.store.CreateMFADevice(ctx, d); err != nil {
		if errors.Is(err, store.ErrExists) {
			return NewVirtualMFADevice{}, apierr.New(apierr.AlreadyExists, "MFADevice entity at the same path and name already exists.")
		}
		return NewVirtualMFADevice{}, mapStore(err, "MFA device")
	}
	return NewVirtualMFADevice{MFADevice: d, Base32Seed: b32, QRCodePNG: qr}, nil
}

// qrCodePNG draws the otpauth:// URL authenticator apps scan.
func qrCodePNG(b32Seed, accountName string) ([]byte, error) {
	q := url.Values{}
	q.Set("secret", b32Seed)
	q.Set("issuer", mfaIssuer)
	q.Set("algorithm", "SHA1")
	q.Set("digits", fmt.Sprint(totpDigits))
	q.Set("period", fmt.Sprint(totpPeriod))
	u := url.URL{Scheme: "otpauth", Host: "totp", Path: "/" + mfaIssuer + ":" + accountName, RawQuery: q.Encode()}
	key, err := otp.NewKeyFromURL(u.String())
	if err != nil {
		return nil, err
	}
	img, err := key.Image(mfaQRSize, mfaQRSize)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// checkSerial validates a serial number and that it is one of this
// account's virtual devices.
func (s *Service) checkSerial(serial string) error {
	if !serialRE.MatchString(serial) {
		return invalid("serial number %q is malformed", serial)
	}
	if !strings.HasPrefix(serial, "arn:aws:iam::"+s.account+":mfa/") {
		return noSuchDevice(serial)
	}
	return nil
}

func noSuchDevice(serial string) error {
	return apierr.New(apierr.NotFound, "VirtualMFADevice with serial number %s doesn't exist.", serial)
}

// openSeed decrypts a device's seed.
func (s *Service) openSeed(d store.MFADevice) ([]byte, error) {
	seed, err := s.sealer.Open(d.SeedCiphertext, d.SerialNumber)
	if err != nil {
		return nil, apierr.Wrap(err, "decrypting the MFA seed")
	}
	return seed, nil
}

// errInvalidCode is IAM's answer to codes that do not match.
func errInvalidCode() error {
	return apierr.WithCode(apierr.InvalidInput, "InvalidAuthenticationCode", "Authentication code for device is not valid.")
}

// EnableMFADevice assigns a virtual device to a user. code1 and code2 must
// be the device's codes of two consecutive time steps, the second within
// one step of now, as IAM requires: that proves the user holds the seed
// and that the device's clock agrees with the server's. The codes cannot
// be used again to sign in.
func (s *Service) EnableMFADevice(ctx context.Context, user, serial, code1, code2 string) error {
	if !totpCodeRE.MatchString(code1) || !totpCodeRE.MatchString(code2) {
		return invalid("authentication codes must be %d digits", totpDigits)
	}
	if _, err := s.GetUser(ctx, user); err != nil {
		return err
	}
	if err := s.checkSerial(serial); err != nil {
		return err
	}
	d, err := s.store.GetMFADevice(ctx, serial)
	if errors.Is(err, store.ErrNotFound) {
		return noSuchDevice(serial)
	}
	if err != nil {
		return mapStore(err, "MFA device")
	}
	if d.UserName != "" {
		return apierr.New(apierr.AlreadyExists, "MFA Device is already in use.")
	}
	seed, err := s.openSeed(d)
	if err != nil {
		return err
	}
	now := s.step()
	// code2's step: the latest within the window whose previous step gave
	// code1, and later than any step already used.
	second := int64(-1)
	for s2 := now - totpSkew; s2 <= now+totpSkew; s2++ {
		m1, err := matchStep(seed, code1, s2-1, s2-1)
		if err != nil {
			return apierr.Wrap(err, "computing MFA codes")
		}
		m2, err := matchStep(seed, code2, s2, s2)
		if err != nil {
			return apierr.Wrap(err, "computing MFA codes")
		}
		if m1 >= 0 && m2 >= 0 && m1 > d.LastStep {
			second = s2
		}
	}
	if second < 0 {
		return errInvalidCode()
	}
	err = s.store.EnableMFADevice(ctx, user, d.SerialNumber, second, s.now().UTC())
	switch {
	case errors.Is(err, store.ErrExists):
		return apierr.New(apierr.AlreadyExists, "MFA Device is already in use.")
	case errors.Is(err, store.ErrLimitExceeded):
		return apierr.New(apierr.LimitExceeded, "Cannot exceed quota for MFADevicesPerUser: %d", store.MaxMFADevicesPerUser)
	case errors.Is(err, store.ErrNotFound):
		return noSuchDevice(serial)
	}
	return mapStore(err, "MFA device")
}

// DeactivateMFADevice unassigns a device from a user; it stays, unassigned,
// until DeleteVirtualMFADevice.
func (s *Service) DeactivateMFADevice(ctx context.Context, user, serial string) error {
	if _, err := s.GetUser(ctx, user); err != nil {
		return err
	}
	if err := s.checkSerial(serial); err != nil {
		return err
	}
	err := s.store.DeactivateMFADevice(ctx, user, serial)
	if errors.Is(err, store.ErrNotFound) {
		return apierr.New(apierr.NotFound, "MFA Device with serial number %s not found for user %s.", serial, user)
	}
	return mapStore(err, "MFA device")
}

// DeleteVirtualMFADevice deletes an unassigned device.
func (s *Service) DeleteVirtualMFADevice(ctx context.Context, serial string) error {
	if err := s.checkSerial(serial); err != nil {
		return err
	}
	err := s.store.DeleteMFADevice(ctx, serial)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return noSuchDevice(serial)
	case errors.Is(err, store.ErrConflict):
		return apierr.New(apierr.Conflict, "MFA Device is still in use; deactivate it first.")
	}
	return mapStore(err, "MFA device")
}

// GetVirtualMFADevice returns a device (its seed still sealed).
func (s *Service) GetVirtualMFADevice(ctx context.Context, serial string) (store.MFADevice, error) {
	if err := s.checkSerial(serial); err != nil {
		return store.MFADevice{}, err
	}
	d, err := s.store.GetMFADevice(ctx, serial)
	if errors.Is(err, store.ErrNotFound) {
		return d, noSuchDevice(serial)
	}
	return d, mapStore(err, "MFA device")
}

// ListMFADevices lists the devices enabled for a user.
func (s *Service) ListMFADevices(ctx context.Context, user string) ([]store.MFADevice, error) {
	if _, err := s.GetUser(ctx, user); err != nil {
		return nil, err
	}
	ds, err := s.store.ListMFADevices(ctx, user)
	return ds, mapStore(err, "MFA devices")
}

// ListVirtualMFADevices lists the account's virtual devices by assignment
// status: "Assigned", "Unassigned", or "Any" ("" too).
func (s *Service) ListVirtualMFADevices(ctx context.Context, status string) ([]store.MFADevice, error) {
	if status != "" && status != "Any" && status != "Assigned" && status != "Unassigned" {
		return nil, invalid("AssignmentStatus must be Assigned, Unassigned or Any")
	}
	ds, err := s.store.ListVirtualMFADevices(ctx)
	if err != nil {
		return nil, mapStore(err, "MFA devices")
	}
	if status == "" || status == "Any" {
		return ds, nil
	}
	out := ds[:0]
	for _, d := range ds {
		if (d.UserName != "") == (status == "Assigned") {
			out = append(out, d)
		}
	}
	return out, nil
}

// UserHasMFA reports whether a user has an enabled MFA device, so that
// sign-in must ask for a code. An unknown user has none.
func (s *Service) UserHasMFA(ctx context.Context, user string) (bool, error) {
	ds, err := s.store.ListMFADevices(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, mapStore(err, "MFA devices")
	}
	return len(ds) > 0, nil
}

// VerifyMFACode checks a sign-in code against the user's enabled devices:
// the code of a time step within one step of now (RFC 6238, 30 s, 6
// digits), compared in constant time, and later than the last step
// accepted from that device — a code is good once, so one overheard or
// phished cannot be replayed. The accepted step is recorded atomically in
// the store, so that of replicas racing with one code only one accepts
// it. A malformed code, an unknown user or a user without devices is
// simply false; errors are the store's or the sealer's.
func (s *Service) VerifyMFACode(ctx context.Context, user, code string) (bool, error) {
	if !totpCodeRE.MatchString(code) {
		return false, nil
	}
	ds, err := s.store.ListMFADevices(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, mapStore(err, "MFA devices")
	}
	now := s.step()
	for _, d := range ds {
		seed, err := s.openSeed(d)
		if err != nil {
			return false, err
		}
		m, err := matchStep(seed, code, now-totpSkew, now+totpSkew)
		if err != nil {
			return false, apierr.Wrap(err, "computing MFA codes")
		}
		if m < 0 || m <= d.LastStep {
			continue // wrong, or a replay
		}
		ok, err := s.store.AdvanceMFAStep(ctx, d.SerialNumber, m)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return false, mapStore(err, "MFA device")
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}
