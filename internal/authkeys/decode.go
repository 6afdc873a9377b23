package authkeys

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/kaginashi/kaginashi/internal/keyrecord"
)

// The two files the command reads are decoded by hand rather than with
// encoding/json: on a fresh process, encoding/json's first Unmarshal of a
// type builds its reflection caches, ~0.2 ms for the two files — a tenth of
// the command's 2 ms budget, paid on every login. These decoders know the
// two shapes and nothing else.
//
// They accept a subset of what encoding/json accepts, and decode it to the
// same values: every JSON document json.Marshal writes for these types, and
// more (unknown keys are skipped, keys match case-insensitively, null
// leaves a field zero), but they refuse what encoding/json would read in a
// surprising way: a known key twice, invalid UTF-8 or a lone surrogate in a
// string, a []byte written as an array of numbers. Refusing means no keys
// (fail closed). FuzzDecode checks, for any input, that what they accept
// encoding/json reads the same; TestDecodeMarshaled that they accept what
// json.Marshal writes.

// maxDepth bounds nesting (encoding/json allows 10000; the files nest 4
// deep).
const maxDepth = 1000

type decoder struct {
	b     []byte
	i     int
	depth int
}

type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string {
	return "invalid JSON at offset " + strconv.Itoa(e.off) + ": " + e.msg
}

func (d *decoder) fail(msg string) error { return &syntaxError{d.i, msg} }

func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next is the next byte after white space (0 at the end).
func (d *decoder) next() byte {
	d.ws()
	if d.i >= len(d.b) {
		return 0
	}
	return d.b[d.i]
}

func (d *decoder) literal(lit string) error {
	if len(d.b)-d.i < len(lit) || string(d.b[d.i:d.i+len(lit)]) != lit {
		return d.fail("invalid literal")
	}
	d.i += len(lit)
	return nil
}

// null consumes a null if one is next.
func (d *decoder) null() (bool, error) {
	if d.next() != 'n' {
		return false, nil
	}
	return true, d.literal("null")
}

// str reads a string. Escapes are decoded; invalid UTF-8 and lone
// surrogates are refused (encoding/json would replace them with U+FFFD).
func (d *decoder) str() (string, error) {
	if d.next() != '"' {
		return "", d.fail("want a string")
	}
	d.i++
	start := d.i
	// Fast path: no escapes, all ASCII.
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c == '"' {
			s := string(d.b[start:d.i])
			d.i++
			return s, nil
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
		d.i++
	}
	out := append([]byte(nil), d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return string(out), nil
		case c < 0x20:
			return "", d.fail("control character in string")
		case c == '\\':
			if d.i+1 >= len(d.b) {
				return "", d.fail("unterminated escape")
			}
			e := d.b[d.i+1]
			d.i += 2
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := d.hex4()
				if !ok {
					return "", d.fail("invalid \\u escape")
				}
				if utf16.IsSurrogate(r) {
					if d.i+1 >= len(d.b) || d.b[d.i] != '\\' || d.b[d.i+1] != 'u' {
						return "", d.fail("lone surrogate")
					}
					d.i += 2
					r2, ok := d.hex4()
					if !ok {
						return "", d.fail("invalid \\u escape")
					}
					if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
						return "", d.fail("lone surrogate")
					}
				}
				out = utf8.AppendRune(out, r)
			default:
				return "", d.fail("invalid escape")
			}
		case c < utf8.RuneSelf:
			out = append(out, c)
			d.i++
		default:
			r, n := utf8.DecodeRune(d.b[d.i:])
			if r == utf8.RuneError && n == 1 {
				return "", d.fail("invalid UTF-8")
			}
			out = append(out, d.b[d.i:d.i+n]...)
			d.i += n
		}
	}
	return "", d.fail("unterminated string")
}

func (d *decoder) hex4() (rune, bool) {
	if d.i+4 > len(d.b) {
		return 0, false
	}
	var r rune
	for _, c := range d.b[d.i : d.i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	d.i += 4
	return r, true
}

// number reads a number's literal, checking JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *decoder) number() (string, error) {
	d.ws()
	start := d.i
	digits := func() int {
		n := 0
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
			n++
		}
		return n
	}
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	if d.i < len(d.b) && d.b[d.i] == '0' {
		d.i++
	} else if digits() == 0 {
		return "", d.fail("want a number")
	}
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		if digits() == 0 {
			return "", d.fail("invalid number")
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		if digits() == 0 {
			return "", d.fail("invalid number")
		}
	}
	return string(d.b[start:d.i]), nil
}

// skip reads and discards any value, checking its syntax.
func (d *decoder) skip() error {
	switch d.next() {
	case '{':
		return d.object(func(string) error { return d.skip() })
	case '[':
		return d.array(d.skip)
	case '"':
		_, err := d.str()
		return err
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	default:
		_, err := d.number()
		return err
	}
}

// object reads an object, calling field for each key with the decoder at
// its value, which field must consume.
func (d *decoder) object(field func(key string) error) error {
	if d.next() != '{' {
		return d.fail("want an object")
	}
	if d.depth++; d.depth > maxDepth {
		return d.fail("nested too deeply")
	}
	d.i++
	if d.next() == '}' {
		d.i++
		d.depth--
		return nil
	}
	for {
		k, err := d.str()
		if err != nil {
			return err
		}
		if d.next() != ':' {
			return d.fail("want ':'")
		}
		d.i++
		if err := field(k); err != nil {
			return err
		}
		switch d.next() {
		case ',':
			d.i++
		case '}':
			d.i++
			d.depth--
			return nil
		default:
			return d.fail("want ',' or '}'")
		}
	}
}

// array reads an array, calling elem for each element.
func (d *decoder) array(elem func() error) error {
	if d.next() != '[' {
		return d.fail("want an array")
	}
	if d.depth++; d.depth > maxDepth {
		return d.fail("nested too deeply")
	}
	d.i++
	if d.next() == ']' {
		d.i++
		d.depth--
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch d.next() {
		case ',':
			d.i++
		case ']':
			d.i++
			d.depth--
			return nil
		default:
			return d.fail("want ',' or ']'")
		}
	}
}

func (d *decoder) end() error {
	if d.ws(); d.i < len(d.b) {
		return d.fail("data after the value")
	}
	return nil
}

// Field decoders. null leaves a string, number or bool as it is and makes
// a slice nil, as encoding/json does.

func (d *decoder) stringField(p *string) error {
	if null, err := d.null(); null || err != nil {
		return err
	}
	s, err := d.str()
	*p = s
	return err
}

func (d *decoder) int64Field(p *int64) error {
	if null, err := d.null(); null || err != nil {
		return err
	}
	lit, err := d.number()
	if err != nil {
		return err
	}
	n, err := strconv.ParseInt(lit, 10, 64)
	if err != nil {
		return errors.New("number " + lit + " is not a 64-bit integer")
	}
	*p = n
	return nil
}

func (d *decoder) boolField(p *bool) error {
	switch d.next() {
	case 'n':
		return d.literal("null")
	case 't':
		*p = true
		return d.literal("true")
	case 'f':
		*p = false
		return d.literal("false")
	}
	return d.fail("want true or false")
}

func (d *decoder) bytesField(p *[]byte) error {
	if null, err := d.null(); null || err != nil {
		*p = nil
		return err
	}
	s, err := d.str()
	if err != nil {
		return err
	}
	// As encoding/json decodes []byte (Decode skips \r and \n).
	b := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(b, []byte(s))
	if err != nil {
		return err
	}
	*p = b[:n]
	return nil
}

// fields dispatches an object's keys to their decoders by name, matched as
// encoding/json matches them (exactly, else case-insensitively); a known
// key twice is refused, unknown keys are skipped.
func (d *decoder) fields(names []string, decode func(i int) error) error {
	var seen uint64
	return d.object(func(key string) error {
		i := -1
		for j, n := range names {
			if key == n {
				i = j
				break
			}
		}
		for j := 0; i < 0 && j < len(names); j++ {
			if strings.EqualFold(key, names[j]) {
				i = j
			}
		}
		if i < 0 {
			return d.skip()
		}
		if seen&(1<<i) != 0 {
			return d.fail("duplicate key " + strconv.Quote(names[i]))
		}
		seen |= 1 << i
		return decode(i)
	})
}

var publicFields = []string{"instanceId", "signingKey", "retiredSigningKeys", "clockSkewMillis", "expiryOption"}

// decodePublic decodes identity.json into *p (zero beforehand).
func decodePublic(b []byte, p *Public) error {
	d := &decoder{b: b}
	if null, err := d.null(); err != nil || null {
		if err == nil {
			err = d.end()
		}
		return err
	}
	err := d.fields(publicFields, func(i int) error {
		switch i {
		case 0:
			return d.stringField(&p.InstanceID)
		case 1:
			return d.bytesField(&p.SigningKey)
		case 2:
			if null, err := d.null(); null || err != nil {
				p.RetiredSigningKeys = nil
				return err
			}
			p.RetiredSigningKeys = []RetiredKey{}
			return d.array(func() error {
				p.RetiredSigningKeys = append(p.RetiredSigningKeys, RetiredKey{})
				k := &p.RetiredSigningKeys[len(p.RetiredSigningKeys)-1]
				if null, err := d.null(); null || err != nil {
					return err
				}
				return d.fields([]string{"key", "until"}, func(i int) error {
					if i == 0 {
						return d.bytesField(&k.Key)
					}
					return d.int64Field(&k.Until)
				})
			})
		case 3:
			return d.int64Field(&p.ClockSkewMillis)
		default:
			return d.boolField(&p.ExpiryOption)
		}
	})
	if err != nil {
		return err
	}
	return d.end()
}

var recordFields = []string{"requestId", "instanceId", "osUser", "publicKey", "fingerprint", "callerArn", "issuedAt", "expiresAt", "signature"}

// decodeRecords decodes records.json into *rs (zero beforehand).
func decodeRecords(b []byte, rs *Records) error {
	d := &decoder{b: b}
	if null, err := d.null(); err != nil || null {
		if err == nil {
			err = d.end()
		}
		return err
	}
	err := d.fields([]string{"records"}, func(int) error {
		if null, err := d.null(); null || err != nil {
			rs.Records = nil
			return err
		}
		rs.Records = []keyrecord.Record{}
		return d.array(func() error {
			rs.Records = append(rs.Records, keyrecord.Record{})
			r := &rs.Records[len(rs.Records)-1]
			if null, err := d.null(); null || err != nil {
				return err
			}
			return d.fields(recordFields, func(i int) error {
				switch i {
				case 0:
					return d.stringField(&r.RequestID)
				case 1:
					return d.stringField(&r.InstanceID)
				case 2:
					return d.stringField(&r.OSUser)
				case 3:
					return d.stringField(&r.PublicKey)
				case 4:
					return d.stringField(&r.Fingerprint)
				case 5:
					return d.stringField(&r.CallerARN)
				case 6:
					return d.int64Field(&r.IssuedAt)
				case 7:
					return d.int64Field(&r.ExpiresAt)
				default:
					return d.bytesField(&r.Signature)
				}
			})
		})
	})
	if err != nil {
		return err
	}
	return d.end()
}
