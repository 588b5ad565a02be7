package report

import (
	"bytes"
	"compress/zlib"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"github.com/coid-project/coid/custody"
)

// maxStream bounds one decompressed stream read back from a PDF.
const maxStream = 64 << 20

// Read is what ReadPDF finds in a PDF: its embedded files and the text
// its pages show.
type Read struct {
	// Files are the contents of the embedded files (PDF EmbeddedFile
	// streams), in the order they appear.
	Files [][]byte
	// Text holds the strings the pages' content streams show, in order.
	Text []string
}

var (
	streamStart = regexp.MustCompile(`>>\s*stream\r?\n`)
	lengthKey   = regexp.MustCompile(`/Length (\d+)`)
	sizeKey     = regexp.MustCompile(`/Size (\d+)`)
	sumKey      = regexp.MustCompile(`/CheckSum <([0-9a-fA-F]{32})>`)
)

// ReadPDF reads back the embedded files and the shown text of a PDF as
// Write makes them: streams with a direct /Length, Flate-compressed or
// not; text shown with literal strings. It is not a general PDF reader:
// a PDF it cannot follow is custody.ErrInvalid, never a guess. An
// embedded file whose /Size or MD5 /CheckSum does not match its content is
// custody.ErrInvalid too.
func ReadPDF(pdf []byte) (*Read, error) {
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		return nil, fmt.Errorf("read PDF: not a PDF: %w", custody.ErrInvalid)
	}
	out := &Read{}
	for pos := 0; ; {
		loc := streamStart.FindIndex(pdf[pos:])
		if loc == nil {
			break
		}
		m := []int{pos + loc[0], pos + loc[1]}
		// The stream's dictionary: from its object's start to the match.
		objAt := bytes.LastIndex(pdf[:m[0]], []byte(" obj"))
		if objAt < 0 {
			return nil, fmt.Errorf("read PDF: a stream outside an object at byte %d: %w", m[0], custody.ErrInvalid)
		}
		dict := pdf[objAt:m[0]]
		lm := lengthKey.FindSubmatch(dict)
		if lm == nil {
			return nil, fmt.Errorf("read PDF: a stream without a direct /Length at byte %d: %w", m[0], custody.ErrInvalid)
		}
		n, err := strconv.Atoi(string(lm[1]))
		if err != nil || m[1]+n > len(pdf) {
			return nil, fmt.Errorf("read PDF: a stream's /Length runs past the file at byte %d: %w", m[0], custody.ErrInvalid)
		}
		raw := pdf[m[1] : m[1]+n]
		pos = m[1] + n // a stream's bytes are never read as PDF syntax
		if !bytes.HasPrefix(bytes.TrimLeft(pdf[m[1]+n:], "\r\n"), []byte("endstream")) {
			return nil, fmt.Errorf("read PDF: a stream's /Length does not end at endstream, byte %d: %w", m[0], custody.ErrInvalid)
		}
		isFile := bytes.Contains(dict, []byte("/Type /EmbeddedFile"))
		if !isFile && bytes.Contains(dict, []byte("/Subtype /Image")) {
			continue
		}
		data := raw
		if bytes.Contains(dict, []byte("/FlateDecode")) {
			zr, err := zlib.NewReader(bytes.NewReader(raw))
			if err != nil {
				return nil, fmt.Errorf("read PDF: stream at byte %d: %v: %w", m[0], err, custody.ErrInvalid)
			}
			if data, err = io.ReadAll(io.LimitReader(zr, maxStream)); err != nil {
				return nil, fmt.Errorf("read PDF: stream at byte %d: %v: %w", m[0], err, custody.ErrInvalid)
			}
		}
		if !isFile {
			if !bytes.Contains(dict, []byte("/Type")) && !bytes.Contains(dict, []byte("/Subtype")) {
				// A page content stream (fonts and others are typed).
				out.Text = append(out.Text, shownStrings(data)...)
			}
			continue
		}
		if sm := sizeKey.FindSubmatch(dict); sm != nil && string(sm[1]) != strconv.Itoa(len(data)) {
			return nil, fmt.Errorf("read PDF: embedded file at byte %d: /Size %s, content %d bytes: %w", m[0], sm[1], len(data), custody.ErrInvalid)
		}
		if cm := sumKey.FindSubmatch(dict); cm != nil {
			sum := md5.Sum(data)
			if !bytes.EqualFold(cm[1], []byte(hex.EncodeToString(sum[:]))) {
				return nil, fmt.Errorf("read PDF: embedded file at byte %d: its content does not match its /CheckSum: %w", m[0], custody.ErrInvalid)
			}
		}
		out.Files = append(out.Files, data)
	}
	return out, nil
}

// shownStrings returns the literal strings of a content stream, escapes
// decoded.
func shownStrings(content []byte) []string {
	var out []string
	for i := 0; i < len(content); i++ {
		if content[i] != '(' {
			continue
		}
		var s []byte
		depth := 0
		for i++; i < len(content); i++ {
			c := content[i]
			if c == '\\' && i+1 < len(content) {
				i++
				switch e := content[i]; e {
				case 'n':
					s = append(s, '\n')
				case 'r':
					s = append(s, '\r')
				case 't':
					s = append(s, '\t')
				case 'b':
					s = append(s, '\b')
				case 'f':
					s = append(s, '\f')
				default:
					if e >= '0' && e <= '7' {
						v := 0
						for k := 0; k < 3 && i < len(content) && content[i] >= '0' && content[i] <= '7'; k++ {
							v = v*8 + int(content[i]-'0')
							i++
						}
						i--
						s = append(s, byte(v))
					} else {
						s = append(s, e)
					}
				}
				continue
			}
			if c == '(' {
				depth++
			} else if c == ')' {
				if depth == 0 {
					break
				}
				depth--
			}
			s = append(s, c)
		}
		out = append(out, string(s))
	}
	return out
}
