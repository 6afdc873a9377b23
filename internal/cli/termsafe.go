package cli

import (
	"strconv"
	"unicode"
	"unicode/utf8"
)

// cell makes a value that came from the server fit to print in a table or
// text line on a terminal. Tag values, host names and audited event names
// are written by others (any user allowed to tag, an agent on a host, a
// caller naming an unknown action): raw, an ESC could rewrite the reader's
// terminal, a tab or newline could forge columns and rows, and a bidi
// override could reorder what is shown. A value of graphic characters only
// is printed as it is; any other is printed Go-quoted ("a\x1b[2Jb"), so
// the reader sees that it was escaped and what it held.
func cell(s string) string {
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsGraphic(r) {
			return strconv.QuoteToGraphic(s)
		}
	}
	return s
}
