package scoring

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode"

	"arcbench/shared/arcdata"
)

// An intKind says what a value read where the official schema wants an int
// became under pydantic v2's lax coercion.
type intKind int

const (
	isInt  intKind = iota // an int that fits in int
	isHuge                // an int beyond int64 (Python's ints have no bound): never an ARC colour
	isNull                // null
	notInt                // anything else pydantic refuses
)

// intValue reads a value as pydantic v2 coerces it to an int (lax mode):
// ints; bools; floats with no fractional part inside int64's range; strings
// of decimal digits (see intString). A huge int comes back clamped to the
// int range.
func (s *scanner) intValue() (int, intKind, error) {
	switch s.peek() {
	case '"':
		if err := s.readString(true); err != nil {
			return 0, notInt, err
		}
		v, k := intString(s.str)
		return v, k, nil
	case '[', '{':
		return 0, notInt, s.skip()
	}
	l, err := s.literal()
	switch {
	case err != nil:
		return 0, notInt, err
	case l == litTrue:
		return 1, isInt, nil
	case l == litFalse:
		return 0, isInt, nil
	case l == litNull:
		return 0, isNull, nil
	case l == litNumber:
		v, k := intNumber(s.lit, s.float)
		return v, k, nil
	}
	return 0, notInt, nil // NaN, ±Infinity: "Input should be a finite number"
}

// intNumber coerces a JSON number as Python reads it: an int when it has
// neither fraction nor exponent, else a float, which pydantic takes when it
// is whole and strictly inside (-2**63, 2**63) (int_from_float,
// int_parsing_size); so 1.0, -0.0 and 1e0 are ints, 1e20 is refused.
func intNumber(lit []byte, float bool) (int, intKind) {
	if !float {
		return intDigits(lit[0] == '-', bytes.TrimPrefix(lit, []byte("-")))
	}
	f, _ := strconv.ParseFloat(string(lit), 64) // ±Inf when out of range, as Python's float()
	if math.IsInf(f, 0) || f != math.Trunc(f) || f <= -(1<<63) || f >= 1<<63 {
		return 0, notInt
	}
	return int(f), isInt
}

// intString coerces a string as pydantic v2 does (pydantic-core's
// str_as_int and clean_int_str, checked against 2.13.4): a JSON integer as
// it is, else one cleaned up and read again. So "1", " 1 ", "+1", "01",
// "1_0" (10), "1.00" are ints, and so, oddly, are "0-6" (-6) and "0__9"
// (9); "1.5", "1e0", "0x1", "1.", ".0", "true", "" are not; nor is one of
// over 4300 characters (jiter's limit).
func intString(b []byte) (int, intKind) {
	if v, k, ok := jsonInt(b); ok {
		return v, k
	}
	c, ok := cleanInt(b)
	if !ok {
		return 0, notInt
	}
	if v, k, ok := jsonInt(c); ok {
		return v, k
	}
	return 0, notInt
}

// jsonInt reads b as a JSON integer (jiter's NumberInt), of at most 4300
// characters.
func jsonInt(b []byte) (int, intKind, bool) {
	digits := bytes.TrimPrefix(b, []byte("-"))
	if len(b) > 4300 || len(digits) == 0 || digits[0] == '0' && len(digits) > 1 {
		return 0, notInt, false
	}
	for _, c := range digits {
		if !isDigit(c) {
			return 0, notInt, false
		}
	}
	v, k := intDigits(len(digits) < len(b), digits)
	return v, k, true
}

// cleanInt is pydantic-core's clean_int_str: trimmed of Unicode white space
// (Rust's str::trim, as unicode.IsSpace), one sign, leading zeros (and
// underscores among them) dropped, a "." followed by zeros only dropped,
// single underscores between digits dropped; false when nothing changed.
func cleanInt(b []byte) ([]byte, bool) {
	before := len(b)
	s := bytes.TrimFunc(b, unicode.IsSpace)
	if rest, ok := bytes.CutPrefix(s, []byte("+")); ok {
		if bytes.HasPrefix(rest, []byte("-")) {
			return nil, false
		}
		s = rest
	}
	neg := false
	if rest, ok := bytes.CutPrefix(s, []byte("-")); ok {
		if bytes.HasPrefix(rest, []byte("-")) || bytes.HasPrefix(rest, []byte("+")) {
			return nil, false
		}
		neg, s = true, rest
	}
	s, ok := stripLeadingZeros(s)
	if !ok {
		return nil, false
	}
	if i := bytes.IndexByte(s, '.'); i >= 0 && i+1 < len(s) && len(bytes.Trim(s[i+1:], "0")) == 0 {
		s = s[:i]
	}
	if bytes.Contains(s, []byte("_")) && s[0] != '_' && s[len(s)-1] != '_' && !bytes.Contains(s, []byte("__")) {
		s = bytes.ReplaceAll(s, []byte("_"), nil)
	} else if len(s) == before {
		return nil, false
	}
	if neg {
		s = append([]byte("-"), s...)
	}
	return s, true
}

// stripLeadingZeros is pydantic-core's strip_leading_zeros: "000" is "0",
// "00.0" is "0.0", "0_01" is "1"; a string not starting with a digit or
// '-' is refused.
func stripLeadingZeros(s []byte) ([]byte, bool) {
	if len(s) == 0 || s[0] != '0' && s[0] != '-' && !isDigit(s[0]) {
		return nil, false
	}
	if s[0] != '0' {
		return s, true
	}
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '0' || c == '_':
		case isDigit(c) || c == '-':
			return s[i:], true
		case c == '.':
			return s[i-1:], true
		default:
			return nil, false
		}
	}
	return s[len(s)-1:], true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// intDigits is the value of decimal digits (underscores skipped), clamped
// beyond int64: Python ints are unbounded, so a huge value is valid, and
// equal to no ARC colour.
func intDigits(neg bool, b []byte) (int, intKind) {
	var v uint64
	for _, c := range b {
		if c == '_' {
			continue
		}
		d := uint64(c - '0')
		if v > (math.MaxUint64-d)/10 {
			v = math.MaxUint64
			break
		}
		v = v*10 + d
	}
	switch {
	case !neg && v <= math.MaxInt64:
		return int(v), isInt
	case neg && v <= 1<<63:
		return int(-v), isInt
	case neg:
		return math.MinInt64, isHuge
	}
	return math.MaxInt64, isHuge
}

// grid is an answer read as the official schema reads it
// (schemas.py Attempt.answer: Union[str, List[List[int]]]).
type grid struct {
	ok    bool // a list of lists of ints: the official scorer accepts it
	lists bool // a list of lists, whatever the cells (parsing.py's test)
	n     int  // rows
	width int  // the longest row
	cells int
	large bool   // a side over the limit: the cells are not kept
	huge  bool   // a cell beyond int64: equal to no output
	why   string // why the official scorer refuses it
	buf   *cells // the cells, unless large
}

// cells holds a grid's cells while it is read, reused from answer to
// answer: only the grids kept are allocated.
type cells struct {
	flat []int // row after row
	lens []int // the rows' lengths
}

// equal tells whether the grid read is out.
func (g grid) equal(out arcdata.Grid) bool {
	if g.large || g.huge || len(out) != g.n {
		return false
	}
	at := 0
	for i, row := range out {
		if g.buf.lens[i] != len(row) || !slices.Equal(g.buf.flat[at:at+len(row)], row) {
			return false
		}
		at += len(row)
	}
	return true
}

// keep allocates the grid read, in two allocations.
func (g grid) keep() arcdata.Grid {
	flat := slices.Clone(g.buf.flat)
	rows := make(arcdata.Grid, len(g.buf.lens))
	at := 0
	for i, n := range g.buf.lens {
		rows[i] = flat[at : at+n : at+n]
		at += n
	}
	return rows
}

func (g *grid) refuse(format string, args ...any) {
	if g.ok || g.why == "" {
		g.why = fmt.Sprintf(format, args...)
	}
	g.ok = false
}

// readGrid reads a list as List[List[int]] into buf, keeping at most side
// rows and columns: a bigger answer cannot equal the task's outputs, so its
// tokens are read (and its cells checked) but not kept.
func readGrid(s *scanner, side int, buf *cells) (grid, error) {
	g := grid{ok: true, lists: true, buf: buf}
	buf.flat, buf.lens = buf.flat[:0], buf.lens[:0]
	err := s.list(func(i int) error {
		g.n++
		if s.peek() != '[' {
			g.lists = false
			g.refuse("row %d is not a list", i)
			return s.skip()
		}
		g.large = g.large || i >= side
		j := 0
		err := s.list(func(int) error {
			v, k, err := s.intValue()
			switch k {
			case isHuge:
				g.huge = true
			case isNull, notInt:
				g.refuse("cell [%d][%d] is not an integer", i, j)
			}
			if j++; j > side {
				g.large = true
			}
			if !g.large {
				buf.flat = append(buf.flat, v)
			}
			return err
		})
		g.cells += j
		g.width = max(g.width, j)
		if !g.large {
			buf.lens = append(buf.lens, j)
		}
		return err
	})
	return g, err
}

// readAnswer reads an attempt's answer as the official schema does: a list
// is a grid; a string is parsed by parse_and_validate_json (see
// answerString); anything else is refused.
func readAnswer(s *scanner, side int, buf *cells) (grid, error) {
	var g grid
	switch s.peek() {
	case '[':
		return readGrid(s, side, buf)
	case '"':
		if err := s.readString(true); err != nil {
			return g, err
		}
		g = answerString(s.str, side, buf)
		if cap(s.str) > 1<<20 {
			s.str = nil // a huge string is held once, not for the rest of the read
		}
		return g, nil
	case '{':
		g.refuse("is an object, not a grid")
		return g, s.skip()
	}
	l, err := s.literal()
	switch l {
	case litNull:
		g.refuse("is null")
	default:
		g.refuse("is not a grid")
	}
	return g, err
}

// answerString parses a string answer as utils/parsing.py's
// parse_and_validate_json: extract_from_boxed, else backscan_json_parser;
// the list found is then read as any list answer.
func answerString(text []byte, side int, buf *cells) grid {
	if g, ok := boxed(text, side, buf); ok {
		return g
	}
	if g, ok := backscan(text, side, buf); ok {
		return g
	}
	var g grid
	g.refuse("is a string holding no grid")
	return g
}

// boxed is extract_from_boxed: re.search(r"\\boxed\{(.*?)\}", s, re.DOTALL),
// the group stripped (Python's str.strip) and json.loads'ed, kept when it is
// a list of lists (an empty list passes).
func boxed(text []byte, side int, buf *cells) (grid, bool) {
	i := bytes.Index(text, []byte(`\boxed{`))
	if i < 0 {
		return grid{}, false
	}
	rest := text[i+len(`\boxed{`):]
	j := bytes.IndexByte(rest, '}') // the first '}' ends the lazy group; if none, a later \boxed{ has none either
	if j < 0 {
		return grid{}, false
	}
	content := bytes.TrimFunc(rest[:j], func(r rune) bool {
		return unicode.IsSpace(r) || 0x1c <= r && r <= 0x1f // Python's str.isspace
	})
	return loadGrid(content, side, buf, false)
}

// backscan is backscan_json_parser: from the last ']' or '}', back to its
// opener counting only that bracket, json.loads the span, kept when it is a
// non-empty list of lists.
func backscan(text []byte, side int, buf *cells) (grid, bool) {
	end := bytes.LastIndexAny(text, "]}")
	if end < 0 || text[end] == '}' { // a span in braces is never a list
		return grid{}, false
	}
	depth := 1
	for k := end - 1; k >= 0; k-- {
		switch text[k] {
		case ']':
			depth++
		case '[':
			if depth--; depth == 0 {
				return loadGrid(text[k:end+1], side, buf, true)
			}
		}
	}
	return grid{}, false
}

// loadGrid is json.loads(b) followed by parsing.py's structure test: a list
// whose elements are all lists (and non-empty when nonEmpty). ok is false
// when that test fails (the parser then yields None).
func loadGrid(b []byte, side int, buf *cells, nonEmpty bool) (grid, bool) {
	s := scanBytes(b)
	if s.peek() != '[' {
		return grid{}, false
	}
	g, err := readGrid(s, side, buf)
	if err != nil || !s.atEnd() || !g.lists || nonEmpty && g.n == 0 {
		return grid{}, false
	}
	return g, true
}
