package sshdsetup

import (
	"bytes"
	"strings"
)

// blockText is the managed block Setup inserts in the main file. It always
// ends with one empty line, which removeBlocks takes away again.
func blockText(lines []string) []byte {
	var b bytes.Buffer
	b.WriteString(beginMarker + " (managed block; undo with: kaginashi-agent setup-sshd --remove)\n")
	b.WriteString("# Keep this block above every Match block: sshd uses the first value it reads.\n")
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	b.WriteString(endMarker + "\n\n")
	return b.Bytes()
}

// dropInText is the content of kaginashi's drop-in file.
func dropInText(lines []string) []byte {
	var b bytes.Buffer
	b.WriteString(beginMarker + " (managed file; undo with: kaginashi-agent setup-sshd --remove)\n")
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	b.WriteString(endMarker + "\n")
	return b.Bytes()
}

type rawLine struct {
	start, end int // byte offsets; end includes the '\n' when there is one
	text       string
}

func rawLines(data []byte) []rawLine {
	var out []rawLine
	for start := 0; start < len(data); {
		end := bytes.IndexByte(data[start:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += start + 1
		}
		out = append(out, rawLine{start: start, end: end, text: strings.TrimRight(string(data[start:end]), "\n")})
		start = end
	}
	return out
}

func isBlank(s string) bool   { return strings.TrimLeft(s, " \t\r\f") == "" }
func isComment(s string) bool { return strings.HasPrefix(strings.TrimLeft(s, " \t\r"), "#") }

// insertionPoint is where the managed block goes in the main file: after the
// header comment (the leading comment lines and the blank line that ends
// them), and so before every directive, every Include and every Match block.
func insertionPoint(data []byte) int {
	lines := rawLines(data)
	i := 0
	for i < len(lines) && isBlank(lines[i].text) {
		i++
	}
	if i == len(lines) || !isComment(lines[i].text) {
		return 0
	}
	for i < len(lines) && isComment(lines[i].text) && !isBlank(lines[i].text) {
		i++
	}
	if i < len(lines) && isBlank(lines[i].text) {
		if lines[i].end == len(data) && !bytes.HasSuffix(data, []byte("\n")) {
			return 0
		}
		return lines[i].end
	}
	if i == len(lines) {
		if bytes.HasSuffix(data, []byte("\n")) {
			return len(data)
		}
		return 0
	}
	// The header runs straight into a directive.
	return lines[i].start
}

// insertBlock returns data with block inserted at the insertion point.
func insertBlock(data, block []byte) []byte {
	at := insertionPoint(data)
	out := make([]byte, 0, len(data)+len(block))
	out = append(out, data[:at]...)
	out = append(out, block...)
	return append(out, data[at:]...)
}

// removeBlocks removes every complete managed block (BEGIN line to END line,
// and the one empty line after END that insertBlock adds). A BEGIN without
// END is left alone.
func removeBlocks(data []byte) (out []byte, removed int) {
	lines := rawLines(data)
	out = make([]byte, 0, len(data))
	for i := 0; i < len(lines); i++ {
		t := strings.TrimLeft(lines[i].text, " \t\r")
		if strings.HasPrefix(t, beginMarker) {
			j := i + 1
			for j < len(lines) && !strings.HasPrefix(strings.TrimLeft(lines[j].text, " \t\r"), endMarker) &&
				!strings.HasPrefix(strings.TrimLeft(lines[j].text, " \t\r"), beginMarker) {
				j++
			}
			if j < len(lines) && strings.HasPrefix(strings.TrimLeft(lines[j].text, " \t\r"), endMarker) {
				removed++
				if j+1 < len(lines) && lines[j+1].text == "" {
					j++
				}
				i = j
				continue
			}
		}
		out = append(out, data[lines[i].start:lines[i].end]...)
	}
	return out, removed
}

// hasMarker reports whether data contains a kaginashi BEGIN marker.
func hasMarker(data []byte) bool {
	for _, l := range rawLines(data) {
		if strings.HasPrefix(strings.TrimLeft(l.text, " \t\r"), beginMarker) {
			return true
		}
	}
	return false
}
