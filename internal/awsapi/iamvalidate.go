package awsapi

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/kaginashi/kaginashi/internal/apierr"
)

// IAM validates every request against its API model before anything else
// (authorization included), as AWS does, and answers a member that breaks
// the model's constraints — missing, too short or long, off its pattern,
// outside its enum or range — with ValidationError:
//
//	1 validation error detected: Value 'Bogus' at 'scope' failed to satisfy
//	constraint: Member must satisfy enum value set: [All, AWS, Local]
//
// and names and paths off their patterns with IAM's own sentences ("The
// specified value for userName is invalid. It must contain only
// alphanumeric characters and/or the following: +=,.@_-"). InvalidInput
// is left to what the model cannot say: an ARN that is not a policy's,
// duplicate tag keys, a tag key starting with aws:, an unknown Marker.
// The constraints are iammodel.go, generated from the model the SDKs are
// built from.

// iamKind is a model shape's type.
type iamKind int

const (
	iamString iamKind = iota
	iamInt
	iamBool
)

// iamShape is a scalar shape of the model with its constraints. max -1:
// no upper bound (min and max are lengths for strings, values for
// integers).
type iamShape struct {
	name      string
	kind      iamKind
	min, max  int
	pattern   string
	enum      []string
	sensitive bool

	once sync.Once
	re   *regexp.Regexp
}

// regexp is the pattern anchored: the model's patterns match whole
// values.
func (s *iamShape) regexp() *regexp.Regexp {
	s.once.Do(func() {
		if s.pattern != "" {
			s.re = regexp.MustCompile(`^(?:` + s.pattern + `)$`)
		}
	})
	return s.re
}

// iamList is a list member: Name.member.N, of scalars (elem) or of
// structures (fields, Name.member.N.Field). max 0: no bound.
type iamList struct {
	max    int
	elem   *iamShape
	fields []iamField
}

type iamField struct {
	name     string
	shape    *iamShape
	required bool
}

// iamMember is a top-level member of an operation's input.
type iamMember struct {
	name     string
	required bool
	shape    *iamShape
	list     *iamList
}

// nameRule and pathRule are IAM's wording for its names and paths (the
// model's pattern failures of these shapes are answered with them, alone).
const (
	nameRule = "It must contain only alphanumeric characters and/or the following: +=,.@_-"
	pathRule = "It must begin and end with / and contain only alphanumeric characters and/or / characters."
)

var iamPatternWording = map[string]string{
	"userNameType": nameRule, "existingUserNameType": nameRule, "groupNameType": nameRule,
	"policyNameType": nameRule, "virtualMFADeviceName": nameRule,
	"pathType": pathRule, "policyPathType": pathRule,
}

// secretShapes are never echoed in messages (the audit log records them):
// the model's sensitive shapes, and MFA codes.
var secretShapes = map[string]bool{"authenticationCodeType": true}

// deferredPatterns are checked after the shape's own validation instead:
// a policy document's characters (Latin-1 only) by iam.ValidatePolicy
// once the document has no ERROR findings, so that a document with
// placeholders in another script (the seed's リージョン) gets
// MalformedPolicyDocument naming them rather than a bare pattern.
var deferredPatterns = map[string]bool{"policyDocumentType": true}

// validationCode is the wire code of model violations.
const validationCode = "ValidationError"

// validateIAM checks an IAM request's parameters against its operation's
// model members.
func validateIAM(v map[string][]string, members []iamMember) error {
	var fails []string
	for _, m := range members {
		field := lowerFirst(m.name)
		if m.list == nil {
			raw, ok := v[m.name]
			if !ok {
				if m.required {
					fails = append(fails, fmt.Sprintf("Value null at '%s' failed to satisfy constraint: Member must not be null", field))
				}
				continue
			}
			if msg, alone := checkIAMScalar(m.shape, field, raw[0]); alone {
				return apierr.WithCode(apierr.InvalidInput, validationCode, "%s", msg)
			} else if msg != "" {
				fails = append(fails, msg)
			}
			continue
		}
		// Lists: present when Name (an empty list) or Name.member.1...
		// is sent.
		n := listLen(v, m.name+".member", m.list)
		_, empty := v[m.name]
		if n == 0 && !empty && m.required {
			fails = append(fails, fmt.Sprintf("Value null at '%s' failed to satisfy constraint: Member must not be null", field))
			continue
		}
		if m.list.max > 0 && n > m.list.max {
			fails = append(fails, fmt.Sprintf("Value at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", field, m.list.max))
			continue
		}
		for i := 1; i <= n; i++ {
			base := fmt.Sprintf("%s.member.%d", m.name, i)
			at := fmt.Sprintf("%s.%d.member", field, i)
			if m.list.elem != nil {
				if msg, _ := checkIAMScalar(m.list.elem, at, first(v[base])); msg != "" {
					fails = append(fails, msg)
				}
				continue
			}
			for _, f := range m.list.fields {
				raw, ok := v[base+"."+f.name]
				fat := at + "." + lowerFirst(f.name)
				if !ok {
					if f.required {
						fails = append(fails, fmt.Sprintf("Value null at '%s' failed to satisfy constraint: Member must not be null", fat))
					}
					continue
				}
				if msg, _ := checkIAMScalar(f.shape, fat, raw[0]); msg != "" {
					fails = append(fails, msg)
				}
			}
		}
	}
	switch len(fails) {
	case 0:
		return nil
	case 1:
		return apierr.WithCode(apierr.InvalidInput, validationCode, "1 validation error detected: %s", fails[0])
	}
	return apierr.WithCode(apierr.InvalidInput, validationCode, "%d validation errors detected: %s", len(fails), strings.Join(fails, "; "))
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// listLen counts a list's members: prefix.1, prefix.2, ... (or, for
// structures, prefix.N.Field for any field) up to the first gap, as AWS's
// parsers read them; one past max is enough to know it is too long.
func listLen(v map[string][]string, prefix string, l *iamList) int {
	limit := l.max + 1
	if l.max == 0 {
		limit = 1 << 20
	}
	n := 0
	for i := 1; i <= limit; i++ {
		base := prefix + "." + strconv.Itoa(i)
		found := false
		if l.elem != nil {
			_, found = v[base]
		} else {
			for _, f := range l.fields {
				if _, ok := v[base+"."+f.name]; ok {
					found = true
					break
				}
			}
		}
		if !found {
			break
		}
		n = i
	}
	return n
}

// checkIAMScalar returns the first constraint value breaks, as "Value 'X'
// at 'field' failed to satisfy constraint: ..."; alone reports IAM's own
// wording for names and paths, which IAM answers by itself.
func checkIAMScalar(s *iamShape, field, value string) (msg string, alone bool) {
	quoted := "Value '" + clip(value) + "' at '" + field + "'"
	if s.sensitive || secretShapes[s.name] {
		quoted = "Value at '" + field + "'"
	}
	fail := func(format string, args ...any) string {
		return quoted + " failed to satisfy constraint: " + fmt.Sprintf(format, args...)
	}
	switch s.kind {
	case iamBool:
		if _, err := strconv.ParseBool(value); err != nil {
			return fail("Member must be a boolean (true or false)"), false
		}
		return "", false
	case iamInt:
		n, err := strconv.Atoi(value)
		switch {
		case err != nil:
			return fail("Member must be an integer"), false
		case n < s.min:
			return fail("Member must have value greater than or equal to %d", s.min), false
		case s.max >= 0 && n > s.max:
			return fail("Member must have value less than or equal to %d", s.max), false
		}
		return "", false
	}
	if len(s.enum) > 0 {
		for _, e := range s.enum {
			if value == e {
				return "", false
			}
		}
		return fail("Member must satisfy enum value set: [%s]", strings.Join(s.enum, ", ")), false
	}
	// Lengths count characters, as Java's String.length does for the
	// Basic Multilingual Plane.
	n := utf8.RuneCountInString(value)
	if n < s.min {
		return fail("Member must have length greater than or equal to %d", s.min), false
	}
	if s.max >= 0 && n > s.max {
		return fail("Member must have length less than or equal to %d", s.max), false
	}
	if re := s.regexp(); re != nil && !deferredPatterns[s.name] && !re.MatchString(value) {
		if rule, ok := iamPatternWording[s.name]; ok {
			return "The specified value for " + field + " is invalid. " + rule, true
		}
		return fail("Member must satisfy regular expression pattern: %s", modelPattern(s.pattern)), false
	}
	return "", false
}

// clip keeps echoed values short: a policy document can be 128 KiB.
func clip(s string) string {
	const max = 128
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max]) + "..."
}

// modelPattern is a pattern as the model writes it (\u0020, not Go's
// \x{0020}), which is how AWS quotes it.
func modelPattern(p string) string {
	return goEscape.ReplaceAllString(p, `\u$1`)
}

var goEscape = regexp.MustCompile(`\\x\{([0-9A-Fa-f]{4})\}`)
