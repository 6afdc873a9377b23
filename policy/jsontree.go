package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// The policy grammar needs things encoding/json's struct decoding hides:
// duplicate keys (IAM rejects them, Go silently keeps the last), the JSON
// type of every value (a number where a string belongs), and where in the
// text a value sits. So documents are first read into this small ordered
// tree with json.Decoder's token stream, then checked element by element.

type jkind uint8

const (
	jNull jkind = iota
	jBool
	jNumber
	jString
	jArray
	jObject
)

func (k jkind) String() string {
	switch k {
	case jNull:
		return "null"
	case jBool:
		return "a boolean"
	case jNumber:
		return "a number"
	case jString:
		return "a string"
	case jArray:
		return "an array"
	default:
		return "an object"
	}
}

type jnode struct {
	kind jkind
	str  string // string value, or a number's literal text
	b    bool
	arr  []*jnode
	obj  []jmember
	off  int // byte offset where the value starts
}

type jmember struct {
	key string
	val *jnode
	off int // byte offset of the key
}

// maxDepth bounds nesting. Policies are at most four levels deep
// (Statement → Condition → operator → key → values); anything much deeper is
// hostile input, and recursion must not be driven by it.
const maxDepth = 32

// jsonError is a document that is not JSON at all. off is a byte offset.
type jsonError struct {
	off int
	msg string
}

func (e *jsonError) Error() string { return e.msg }

func parseTree(data []byte) (*jnode, *jsonError) {
	if !utf8.Valid(data) {
		return nil, &jsonError{off: firstInvalidUTF8(data), msg: "the document is not valid UTF-8"}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	r := &treeReader{dec: dec, data: data}
	n, err := r.value(0)
	if err != nil {
		return nil, err
	}
	// Anything after the top-level value is an error, as IAM says.
	off := skipSpace(data, int(dec.InputOffset()))
	if off < len(data) {
		return nil, &jsonError{off: off, msg: "unexpected text after the end of the policy document"}
	}
	return n, nil
}

type treeReader struct {
	dec  *json.Decoder
	data []byte
}

func (r *treeReader) token() (json.Token, int, *jsonError) {
	start := skipSpace(r.data, int(r.dec.InputOffset()))
	t, err := r.dec.Token()
	if err != nil {
		return nil, start, r.wrap(err, start)
	}
	return t, start, nil
}

func (r *treeReader) wrap(err error, at int) *jsonError {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &jsonError{off: int(se.Offset), msg: "the document is not valid JSON: " + se.Error()}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		if len(bytes.TrimSpace(r.data)) == 0 {
			return &jsonError{off: 0, msg: "the document is empty"}
		}
		return &jsonError{off: len(r.data), msg: "the document is not valid JSON: it ends before the policy is complete"}
	}
	return &jsonError{off: at, msg: "the document is not valid JSON: " + err.Error()}
}

func (r *treeReader) value(depth int) (*jnode, *jsonError) {
	t, start, err := r.token()
	if err != nil {
		return nil, err
	}
	return r.valueFrom(t, start, depth)
}

func (r *treeReader) valueFrom(t json.Token, start, depth int) (*jnode, *jsonError) {
	if depth > maxDepth {
		return nil, &jsonError{off: start, msg: fmt.Sprintf("the document nests deeper than %d levels", maxDepth)}
	}
	switch v := t.(type) {
	case nil:
		return &jnode{kind: jNull, off: start}, nil
	case bool:
		return &jnode{kind: jBool, b: v, off: start}, nil
	case json.Number:
		return &jnode{kind: jNumber, str: string(v), off: start}, nil
	case string:
		return &jnode{kind: jString, str: v, off: start}, nil
	case json.Delim:
		switch v {
		case '[':
			n := &jnode{kind: jArray, off: start}
			for r.dec.More() {
				el, err := r.value(depth + 1)
				if err != nil {
					return nil, err
				}
				n.arr = append(n.arr, el)
			}
			if _, _, err := r.token(); err != nil { // ']'
				return nil, err
			}
			return n, nil
		case '{':
			n := &jnode{kind: jObject, off: start}
			for r.dec.More() {
				kt, koff, err := r.token()
				if err != nil {
					return nil, err
				}
				key, _ := kt.(string) // the decoder guarantees object keys are strings
				val, err := r.value(depth + 1)
				if err != nil {
					return nil, err
				}
				n.obj = append(n.obj, jmember{key: key, val: val, off: koff})
			}
			if _, _, err := r.token(); err != nil { // '}'
				return nil, err
			}
			return n, nil
		}
	}
	return nil, &jsonError{off: start, msg: fmt.Sprintf("the document is not valid JSON: unexpected %v", t)}
}

func skipSpace(data []byte, off int) int {
	for off < len(data) {
		switch data[off] {
		case ' ', '\t', '\n', '\r', ',', ':':
			off++
		default:
			return off
		}
	}
	return off
}

func firstInvalidUTF8(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return 0
}

// lineCol turns a byte offset into a 1-based line and a 1-based column
// counted in characters, which is what editors show.
func lineCol(data []byte, off int) (line, col int) {
	if off > len(data) {
		off = len(data)
	}
	line, col = 1, 1
	for _, r := range string(data[:off]) {
		if r == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}
