package authkeys

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/kaginashi/kaginashi/internal/keyrecord"
)

// randString mixes ASCII, characters JSON escapes, and multi-byte and
// astral runes (which json.Marshal writes raw, and some as \u escapes).
func randString(r *rand.Rand) string {
	alphabet := []string{"a", "Z", "0", "-", "\"", "\\", "/", "\n", "\t", "\x00", "\x1f", "<", "&", "é", "ſ", "K", "\u2028", "😀", " "}
	var b strings.Builder
	for n := r.IntN(12); n > 0; n-- {
		b.WriteString(alphabet[r.IntN(len(alphabet))])
	}
	return b.String()
}

func randBytes(r *rand.Rand) []byte {
	switch r.IntN(4) {
	case 0:
		return nil
	case 1:
		return []byte{}
	}
	b := make([]byte, r.IntN(70))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func randInt(r *rand.Rand) int64 {
	switch r.IntN(4) {
	case 0:
		return 0
	case 1:
		return -r.Int64()
	case 2:
		return 1<<63 - 1
	}
	return r.Int64N(1 << 50)
}

func randPublic(r *rand.Rand) Public {
	p := Public{InstanceID: randString(r), SigningKey: randBytes(r), ClockSkewMillis: randInt(r), ExpiryOption: r.IntN(2) == 0}
	for n := r.IntN(3); n > 0; n-- {
		p.RetiredSigningKeys = append(p.RetiredSigningKeys, RetiredKey{Key: randBytes(r), Until: randInt(r)})
	}
	return p
}

func randRecords(r *rand.Rand) Records {
	var rs Records
	if r.IntN(5) == 0 {
		return rs // "records": null
	}
	rs.Records = []keyrecord.Record{}
	for n := r.IntN(4); n > 0; n-- {
		rs.Records = append(rs.Records, keyrecord.Record{
			RequestID: randString(r), InstanceID: randString(r), OSUser: randString(r), PublicKey: randString(r),
			Fingerprint: randString(r), CallerARN: randString(r), IssuedAt: randInt(r), ExpiresAt: randInt(r), Signature: randBytes(r),
		})
	}
	return rs
}

// TestDecodeMarshaled: whatever json.Marshal (as the agent, compact or
// indented) writes for these types, the hand decoders read back exactly.
func TestDecodeMarshaled(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		pub, rs := randPublic(r), randRecords(r)
		for _, indent := range []bool{false, true} {
			enc := json.Marshal
			if indent {
				enc = func(v any) ([]byte, error) { return json.MarshalIndent(v, "", "  ") }
			}
			b, err := enc(pub)
			if err != nil {
				t.Fatal(err)
			}
			var got Public
			if err := decodePublic(b, &got); err != nil || !reflect.DeepEqual(got, pub) {
				t.Fatalf("decodePublic(%s) = %+v, %v; want %+v", b, got, err, pub)
			}
			b, err = enc(rs)
			if err != nil {
				t.Fatal(err)
			}
			var gotRs Records
			if err := decodeRecords(b, &gotRs); err != nil || !reflect.DeepEqual(gotRs, rs) {
				t.Fatalf("decodeRecords(%s) = %+v, %v; want %+v", b, gotRs, err, rs)
			}
		}
	}
}

// TestDecodeStricter: what encoding/json reads in a surprising way is
// refused, and plain syntax errors are errors.
func TestDecodeStricter(t *testing.T) {
	for _, in := range []string{
		`{"instanceId":"a","instanceId":"b"}`,
		`{"instanceId":"a","INSTANCEID":"b"}`,
		"{\"instanceId\":\"\xff\"}",
		`{"instanceId":"\ud800"}`,
		`{"signingKey":[1,2,3]}`,
		`{"clockSkewMillis":1.5}`,
		`{"clockSkewMillis":"5"}`,
		`{"expiryOption":1}`,
		`{"instanceId":"a"} x`,
		`{"instanceId":"a",}`,
		`{"x":[1,]}`,
		`{"x":01}`,
		`{"x":"\q"}`,
		`[]`,
		``,
		strings.Repeat("[", 2000) + strings.Repeat("]", 2000),
	} {
		var p Public
		if err := decodePublic([]byte(in), &p); err == nil {
			t.Errorf("decodePublic(%q) accepted it: %+v", in, p)
		}
	}
	var p Public
	if err := decodePublic([]byte(`{"InstanceID":"i-1","x":{"y":[null,true,false,-0.5e+3,"\u00e9\ud83d\ude00"]},"expiryOption":null}`), &p); err != nil || p.InstanceID != "i-1" {
		t.Errorf("case-insensitive key, unknown values skipped: %+v, %v", p, err)
	}
}

// FuzzDecode: whatever the hand decoders accept, encoding/json accepts and
// decodes to the same value.
func FuzzDecode(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 8; i++ {
		b, _ := json.Marshal(randPublic(r))
		f.Add(b)
		b, _ = json.MarshalIndent(randRecords(r), "", "  ")
		f.Add(b)
	}
	f.Add([]byte(`{"records":[null,{"requestId":"a\u0041","signature":"AAEC\r\n"}]}`))
	f.Add([]byte(`{"retiredSigningKeys":[{"key":"AAAA","until":5},null],"signingKey":null}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var mine, std Public
		if err := decodePublic(b, &mine); err == nil {
			if err := json.Unmarshal(b, &std); err != nil {
				t.Fatalf("decodePublic accepted %q, encoding/json: %v", b, err)
			}
			if !reflect.DeepEqual(mine, std) {
				t.Fatalf("%q: decodePublic %+v, encoding/json %+v", b, mine, std)
			}
		}
		var mineRs, stdRs Records
		if err := decodeRecords(b, &mineRs); err == nil {
			if err := json.Unmarshal(b, &stdRs); err != nil {
				t.Fatalf("decodeRecords accepted %q, encoding/json: %v", b, err)
			}
			if !reflect.DeepEqual(mineRs, stdRs) {
				t.Fatalf("%q: decodeRecords %+v, encoding/json %+v", b, mineRs, stdRs)
			}
		}
	})
}
