package scoring

import (
	"errors"
	"fmt"
	"io"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner reads JSON the way the official scorer's json.load does (Python's
// json module): strict JSON, plus the literals NaN, Infinity and -Infinity,
// and duplicate keys. It is a pull parser over a fixed buffer, so that a
// value the reader does not need is skipped without being kept: only the
// string or number being read is held (encoding/json's Decoder.Token would
// allocate for every token, and rejects NaN, which Python writes for a float
// nan in metadata).
type scanner struct {
	r     io.Reader // nil when buf is the whole input
	buf   []byte
	i     int   // next unread byte of buf
	off   int64 // document offset of buf[0]
	rerr  error // r's error, met once buf is drained
	depth int
	str   []byte   // the last string read, unescaped
	parts [][]byte // a long string's first parts, while it is read
	lit   []byte   // the last number read
	float bool     // it has a fraction or an exponent: Python reads a float
}

// strPart is the size of a long string's parts: gathered in parts and
// joined once, a string is not copied over and over as it grows.
const strPart = 1 << 20

func (s *scanner) add(b []byte) {
	for len(s.str)+len(b) > cap(s.str) && cap(s.str) >= strPart {
		n := cap(s.str) - len(s.str)
		s.parts = append(s.parts, append(s.str, b[:n]...))
		b = b[n:]
		s.str = make([]byte, 0, strPart)
	}
	s.str = append(s.str, b...)
}

func (s *scanner) addRune(r rune) {
	var b [utf8.UTFMax]byte
	s.add(utf8.AppendRune(b[:0], r))
}

// maxDepth bounds nesting, as Python's does (its recursion limit stops it
// sooner); deeper documents are refused.
const maxDepth = 10000

func newScanner(r io.Reader) *scanner { return &scanner{r: r, buf: make([]byte, 0, 64<<10)} }

func scanBytes(b []byte) *scanner { return &scanner{buf: b, rerr: io.EOF} }

// fill makes sure a byte is buffered; false at the end of the input.
func (s *scanner) fill() bool { return s.i < len(s.buf) || s.more() }

func (s *scanner) more() bool {
	for s.i == len(s.buf) {
		if s.rerr != nil {
			return false
		}
		s.off += int64(len(s.buf))
		s.i = 0
		n, err := s.r.Read(s.buf[:cap(s.buf)])
		s.buf = s.buf[:n]
		s.rerr = err
	}
	return true
}

func (s *scanner) errorf(format string, args ...any) error {
	if s.i == len(s.buf) && s.rerr != nil && !errors.Is(s.rerr, io.EOF) {
		return s.rerr
	}
	if !s.fill() {
		return fmt.Errorf("unexpected end of JSON at byte %d", s.off+int64(s.i))
	}
	return fmt.Errorf("invalid JSON at byte %d: %s", s.off+int64(s.i), fmt.Sprintf(format, args...))
}

// peek skips whitespace and returns the next byte without consuming it, 0
// at the end of the input.
func (s *scanner) peek() byte {
	for s.fill() {
		switch c := s.buf[s.i]; c {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return c
		}
	}
	return 0
}

// atEnd tells whether nothing but whitespace is left.
func (s *scanner) atEnd() bool {
	s.peek()
	return !s.fill()
}

// next consumes one byte, -1 at the end of the input.
func (s *scanner) next() int {
	if !s.fill() {
		return -1
	}
	s.i++
	return int(s.buf[s.i-1])
}

func (s *scanner) enter() error {
	if s.depth++; s.depth > maxDepth {
		return s.errorf("nested deeper than %d", maxDepth)
	}
	return nil
}

// list reads an array, calling each to read its elements in turn.
func (s *scanner) list(each func(i int) error) error {
	if s.peek() != '[' {
		return s.errorf("expected [")
	}
	s.i++
	if err := s.enter(); err != nil {
		return err
	}
	if s.peek() == ']' {
		s.i++
		s.depth--
		return nil
	}
	for i := 0; ; i++ {
		if err := each(i); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			s.depth--
			return nil
		default:
			return s.errorf("expected , or ]")
		}
	}
}

// object reads an object, calling each to read the value of every key in
// turn. key is valid until each reads a string.
func (s *scanner) object(each func(key []byte) error) error {
	if s.peek() != '{' {
		return s.errorf("expected {")
	}
	s.i++
	if err := s.enter(); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.i++
		s.depth--
		return nil
	}
	for {
		if s.peek() != '"' {
			return s.errorf("expected a string key")
		}
		if err := s.readString(true); err != nil {
			return err
		}
		if s.peek() != ':' {
			return s.errorf("expected :")
		}
		s.i++
		if err := each(s.str); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			s.depth--
			return nil
		default:
			return s.errorf("expected , or }")
		}
	}
}

// skip reads a value and forgets it.
func (s *scanner) skip() error {
	switch s.peek() {
	case '[':
		return s.list(func(int) error { return s.skip() })
	case '{':
		return s.object(func([]byte) error { return s.skip() })
	case '"':
		return s.readString(false)
	}
	_, err := s.literal()
	return err
}

// readString reads a string into s.str (when keep), unescaping it.
func (s *scanner) readString(keep bool) error {
	if s.peek() != '"' {
		return s.errorf("expected a string")
	}
	s.i++
	s.str, s.parts = s.str[:0], nil
	var high rune // a pending \u high surrogate, waiting for its low half
	flush := func() {
		if high != 0 && keep {
			s.addRune(utf8.RuneError)
		}
		high = 0
	}
	for {
		if !s.fill() {
			return s.errorf("unterminated string")
		}
		chunk := s.buf[s.i:]
		j := 0
		for j < len(chunk) && chunk[j] != '"' && chunk[j] != '\\' && chunk[j] >= 0x20 {
			j++
		}
		if j > 0 {
			flush()
			if keep {
				s.add(chunk[:j])
			}
			s.i += j
		}
		if j == len(chunk) {
			continue
		}
		switch c := chunk[j]; {
		case c == '"':
			flush()
			s.i++
			if len(s.parts) > 0 {
				n := len(s.str)
				for _, p := range s.parts {
					n += len(p)
				}
				whole := make([]byte, 0, n)
				for _, p := range s.parts {
					whole = append(whole, p...)
				}
				s.str, s.parts = append(whole, s.str...), nil
			}
			return nil
		case c < 0x20:
			return s.errorf("control character in string") // Python's strict mode
		}
		s.i++ // the backslash
		e := s.next()
		var r rune
		switch e {
		case '"', '\\', '/':
			r = rune(e)
		case 'b':
			r = '\b'
		case 'f':
			r = '\f'
		case 'n':
			r = '\n'
		case 'r':
			r = '\r'
		case 't':
			r = '\t'
		case 'u':
			for range 4 {
				h := s.next()
				switch {
				case '0' <= h && h <= '9':
					r = r<<4 | rune(h-'0')
				case 'a' <= h && h <= 'f':
					r = r<<4 | rune(h-'a'+10)
				case 'A' <= h && h <= 'F':
					r = r<<4 | rune(h-'A'+10)
				default:
					return s.errorf("invalid \\u escape")
				}
			}
		default:
			return s.errorf("invalid escape")
		}
		switch {
		case high != 0 && 0xDC00 <= r && r < 0xE000:
			r, high = utf16.DecodeRune(high, r), 0
		case 0xD800 <= r && r < 0xDC00:
			flush()
			high = r
			continue
		default:
			flush()
		}
		if keep {
			s.addRune(r) // a lone low surrogate becomes U+FFFD
		}
	}
}

// A literal is a value that is not a string, list or object.
type literal int

const (
	litNumber   literal = iota // the number's text is in s.lit
	litTrue                    // true
	litFalse                   // false
	litNull                    // null
	litInfinite                // NaN, Infinity or -Infinity: Python reads them as floats
)

// literal reads a number (JSON's grammar: Python's json uses the same), or
// one of the words Python's json knows.
func (s *scanner) literal() (literal, error) {
	word := func(w string, l literal) (literal, error) {
		for k := range len(w) {
			if s.next() != int(w[k]) {
				return 0, s.errorf("invalid literal")
			}
		}
		return l, nil
	}
	switch s.peek() {
	case 't':
		return word("true", litTrue)
	case 'f':
		return word("false", litFalse)
	case 'n':
		return word("null", litNull)
	case 'N':
		return word("NaN", litInfinite)
	case 'I':
		return word("Infinity", litInfinite)
	}
	// A number, in JSON's grammar, which Python's json uses too. A number
	// character right after a number is an error there as here, so the
	// longest run of them is read, then checked.
	s.lit = s.lit[:0]
	for s.fill() {
		chunk := s.buf[s.i:]
		j := 0
		for j < len(chunk) && numeric(chunk[j]) {
			j++
		}
		s.lit = append(s.lit, chunk[:j]...)
		s.i += j
		if j < len(chunk) {
			break
		}
	}
	if len(s.lit) == 1 && s.lit[0] == '-' && s.fill() && s.buf[s.i] == 'I' {
		return word("Infinity", litInfinite)
	}
	if len(s.lit) == 0 {
		return 0, s.errorf("expected a value")
	}
	var ok bool
	if s.float, ok = number(s.lit); !ok {
		return 0, s.errorf("invalid number")
	}
	return litNumber, nil
}

func numeric(c byte) bool {
	switch c {
	case '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '+', '-', '.', 'e', 'E':
		return true
	}
	return false
}

// number checks b is a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?
// and tells whether it has a fraction or an exponent.
func number(b []byte) (float, ok bool) {
	i := 0
	digits := func() int {
		n := 0
		for i < len(b) && isDigit(b[i]) {
			i, n = i+1, n+1
		}
		return n
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return false, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false, false
		}
		float = true
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false, false
		}
		float = true
	}
	return float, i == len(b)
}
