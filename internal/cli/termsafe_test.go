package cli

import "testing"

func TestCell(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"web-1", "web-1"},
		{"", ""},
		{"鍵なし 日本語", "鍵なし 日本語"},
		{`a "quoted" \ value`, `a "quoted" \ value`},
		{"a\x1b[2Jb", `"a\x1b[2Jb"`},
		{"col\tforged", `"col\tforged"`},
		{"row\nforged", `"row\nforged"`},
		{"c1\u009bm", `"c1\u009bm"`},
		{"evil\u202etxt.exe", `"evil\u202etxt.exe"`},
		{"line\u2028sep", `"line\u2028sep"`},
		{"bad\xffutf8", `"bad\xffutf8"`},
		{"del\x7f", `"del\x7f"`},
	} {
		if got := cell(tc.in); got != tc.want {
			t.Errorf("cell(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
