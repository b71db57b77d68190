package jose

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"unicode/utf8"
)

// MaxDepth bounds nesting in the JSON this package parses (token headers,
// claims, JWKS documents): real claim sets are two or three levels deep,
// and a bound keeps a hostile input from costing stack or time.
const MaxDepth = 32

// ParseObject decodes one JSON object as RFC 8259 defines it, with the
// strictness RFC 7515 §4 asks of a JOSE header (and we ask of claims and
// key sets too): valid UTF-8, no duplicate member names at any depth,
// nesting within MaxDepth, nothing after the value. Numbers stay
// json.Number so their exact text survives.
//
// encoding/json keeps the last of duplicate names silently, which is how
// "two different parsers see two different tokens" attacks start; this
// small parser is why token bytes never go to encoding/json.
func ParseObject(data []byte) (map[string]any, error) {
	return parseObject(string(data), nil, false)
}

// parseObject is ParseObject of a document held as a string (the token
// decoder's one copy of a token's header and payload). With selective, it
// builds only the top-level members named in want, every rule still
// applying to the whole document: the others are checked and left out of
// the map, and nothing is allocated for their values, so a verifier that
// reads a handful of a token's claims pays for those only (DecodeSelected).
func parseObject(text string, want []string, selective bool) (map[string]any, error) {
	p := newParser(text)
	defer p.release()
	p.want, p.selective = want, selective
	v, err := p.document()
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

// ArrayMember parses data exactly as ParseObject does, in the same single
// pass, and also returns the raw bytes of each element of the top-level
// member named member. found is false when there is no such member or its
// value is not an array. The spans alias data.
func ArrayMember(data []byte, member string) (elems []json.RawMessage, found bool, err error) {
	p := newParser(string(data))
	defer p.release()
	p.member = member
	if _, err := p.document(); err != nil {
		return nil, false, err
	}
	for _, s := range p.spans {
		elems = append(elems, json.RawMessage(data[s[0]:s[1]:s[1]]))
	}
	return elems, p.found, nil
}

// jsonParser allocates little per document: every string and number it
// returns is a substring of the document's one string (text), and each object
// or array is allocated once at its final size, its members gathered first
// on stacks shared by the whole document.
type jsonParser struct {
	text string // the document; every string and number returned is a substring
	pos  int

	members []member // the open objects' members, innermost last
	elems   []any    // the open arrays' elements, innermost last
	stacks  *parseStacks

	// member, when set, names a top-level member whose array elements'
	// byte spans are recorded in spans (found says it was an array).
	member string
	spans  [][2]int
	found  bool

	// selective: only the top-level members named in want are built
	// (DecodeSelected). skipping counts the values being checked but not
	// built: inside one, strings, numbers, arrays and objects are scanned
	// by the same code and return nil.
	selective bool
	want      []string
	skipping  int
}

// skipped stands for a top-level member a selective parse checked but did not
// build; nil cannot, being JSON null. A zero-size value: boxing it
// allocates nothing.
type skipped struct{}

// member is one parsed object member; pos is where its name starts.
type member struct {
	name string
	val  any
	pos  int
}

// parseStacks are a parser's member and element stacks, reused across
// documents: they hold nothing once a document is parsed.
type parseStacks struct {
	members []member
	elems   []any
}

var stackPool = sync.Pool{New: func() any { return new(parseStacks) }}

func newParser(text string) jsonParser {
	st := stackPool.Get().(*parseStacks)
	return jsonParser{text: text, members: st.members[:0], elems: st.elems[:0], stacks: st}
}

// release returns the stacks for the next document; the parser must not be
// used afterwards.
func (p *jsonParser) release() {
	p.stacks.members, p.stacks.elems = p.members[:0], p.elems[:0]
	stackPool.Put(p.stacks)
}

// document parses the whole input as one object and nothing else.
func (p *jsonParser) document() (any, error) {
	if !utf8.ValidString(p.text) {
		return nil, errors.New("not valid UTF-8")
	}
	p.skipSpace()
	if p.pos >= len(p.text) || p.text[p.pos] != '{' {
		return nil, errors.New("not a JSON object")
	}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.text) {
		return nil, fmt.Errorf("data after JSON object at offset %d", p.pos)
	}
	return v, nil
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("JSON offset %d: %s", p.pos, fmt.Sprintf(format, args...))
}

func (p *jsonParser) skipSpace() {
	for p.pos < len(p.text) {
		switch p.text[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, or 0 at the end.
func (p *jsonParser) peek() byte {
	p.skipSpace()
	if p.pos >= len(p.text) {
		return 0
	}
	return p.text[p.pos]
}

func (p *jsonParser) value(depth int) (any, error) {
	if depth > MaxDepth {
		return nil, p.errorf("nested deeper than %d", MaxDepth)
	}
	p.skipSpace()
	if p.pos >= len(p.text) {
		return nil, p.errorf("unexpected end")
	}
	switch c := p.text[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth, nil)
	case c == '"':
		str, err := p.string()
		if err != nil || p.skipping > 0 {
			return nil, err
		}
		if v, common := commonValues[str]; common {
			return v, nil
		}
		return str, nil
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		for _, lit := range [...]struct {
			text string
			val  any
		}{{"true", true}, {"false", false}, {"null", nil}} {
			if len(p.text)-p.pos >= len(lit.text) && p.text[p.pos:p.pos+len(lit.text)] == lit.text {
				p.pos += len(lit.text)
				return lit.val, nil
			}
		}
		return nil, p.errorf("unexpected character %q", c)
	}
}

func (p *jsonParser) object(depth int) (any, error) {
	p.pos++ // '{'
	p.skipSpace()
	if p.pos < len(p.text) && p.text[p.pos] == '}' {
		p.pos++
		if p.skipping > 0 {
			return nil, nil
		}
		return map[string]any{}, nil
	}
	base := len(p.members)
	defer func() {
		clear(p.members[base:])
		p.members = p.members[:base]
	}()
	for {
		p.skipSpace()
		if p.pos >= len(p.text) || p.text[p.pos] != '"' {
			return nil, p.errorf("expected member name")
		}
		at := p.pos
		name, err := p.string()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.pos >= len(p.text) || p.text[p.pos] != ':' {
			return nil, p.errorf("expected ':'")
		}
		p.pos++
		var v any
		switch {
		case depth == 0 && p.member != "" && name == p.member && p.peek() == '[':
			v, err = p.array(depth+1, &p.spans)
			p.found = true
		case depth == 0 && p.selective && !slices.Contains(p.want, name):
			p.skipping++
			_, err = p.value(depth + 1)
			p.skipping--
			v = skipped{}
		default:
			v, err = p.value(depth + 1)
		}
		if err != nil {
			return nil, err
		}
		p.members = append(p.members, member{name: name, val: v, pos: at})
		p.skipSpace()
		if p.pos >= len(p.text) {
			return nil, p.errorf("unterminated object")
		}
		switch p.text[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return p.build(p.members[base:], depth)
		default:
			return nil, p.errorf("expected ',' or '}'")
		}
	}
}

// build makes the object of members, refusing a duplicate name (at the
// position of its second occurrence). Inside a skipped value it only
// refuses; a selective top level keeps the members that were not skipped.
func (p *jsonParser) build(members []member, depth int) (any, error) {
	if p.skipping > 0 {
		return nil, p.refuseDuplicates(members)
	}
	if depth == 0 && p.selective {
		if err := p.refuseDuplicates(members); err != nil {
			return nil, err
		}
		obj := make(map[string]any)
		for _, m := range members {
			if _, skip := m.val.(skipped); !skip {
				obj[m.name] = m.val
			}
		}
		return obj, nil
	}
	obj := make(map[string]any, len(members))
	for _, m := range members {
		if _, dup := obj[m.name]; dup {
			return nil, p.duplicate(m)
		}
		obj[m.name] = m.val
	}
	return obj, nil
}

// refuseDuplicates is build's duplicate check without building: pairwise
// for the small objects of real tokens, through a set for large ones, so a
// hostile object of thousands of members costs linear time.
func (p *jsonParser) refuseDuplicates(members []member) error {
	if len(members) > 16 {
		seen := make(map[string]struct{}, len(members))
		for _, m := range members {
			if _, dup := seen[m.name]; dup {
				return p.duplicate(m)
			}
			seen[m.name] = struct{}{}
		}
		return nil
	}
	for i, m := range members {
		for _, earlier := range members[:i] {
			if earlier.name == m.name {
				return p.duplicate(m)
			}
		}
	}
	return nil
}

// duplicate is the error for m, the second member of its name.
func (p *jsonParser) duplicate(m member) error {
	p.pos = m.pos
	return p.errorf("duplicate member name %.64q", m.name)
}

// array parses an array; when spans is not nil it also records where each
// element starts and ends.
func (p *jsonParser) array(depth int, spans *[][2]int) (any, error) {
	p.pos++ // '['
	p.skipSpace()
	if p.pos < len(p.text) && p.text[p.pos] == ']' {
		p.pos++
		return []any{}, nil
	}
	base := len(p.elems)
	defer func() {
		clear(p.elems[base:])
		p.elems = p.elems[:base]
	}()
	for {
		p.skipSpace()
		start := p.pos
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if spans != nil {
			*spans = append(*spans, [2]int{start, p.pos})
		}
		if p.skipping == 0 {
			p.elems = append(p.elems, v)
		}
		p.skipSpace()
		if p.pos >= len(p.text) {
			return nil, p.errorf("unterminated array")
		}
		switch p.text[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			if p.skipping > 0 {
				return nil, nil
			}
			return append([]any(nil), p.elems[base:]...), nil
		default:
			return nil, p.errorf("expected ',' or ']'")
		}
	}
}

// string scans a JSON string. Strings without escapes (nearly all of them)
// are sliced directly; the rare escaped one is decoded by encoding/json,
// which is safe here because a lone string has no member names to confuse.
func (p *jsonParser) string() (string, error) {
	start := p.pos
	p.pos++ // opening quote
	escaped := false
	for p.pos < len(p.text) {
		c := p.text[p.pos]
		switch {
		case c == '"':
			p.pos++
			if !escaped {
				return p.text[start+1 : p.pos-1], nil
			}
			var s string
			if err := json.Unmarshal([]byte(p.text[start:p.pos]), &s); err != nil {
				return "", p.errorf("bad string escape")
			}
			return s, nil
		case c == '\\':
			escaped = true
			p.pos += 2
		case c < 0x20:
			return "", p.errorf("control character in string")
		default:
			p.pos++
		}
	}
	return "", p.errorf("unterminated string")
}

// number scans an RFC 8259 number and keeps its text.
func (p *jsonParser) number() (any, error) {
	start := p.pos
	if p.text[p.pos] == '-' {
		p.pos++
	}
	switch {
	case p.pos < len(p.text) && p.text[p.pos] == '0':
		p.pos++
	case p.digits() == 0:
		return nil, p.errorf("bad number")
	}
	if p.pos < len(p.text) && p.text[p.pos] == '.' {
		p.pos++
		if p.digits() == 0 {
			return nil, p.errorf("bad number fraction")
		}
	}
	if p.pos < len(p.text) && (p.text[p.pos] == 'e' || p.text[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.text) && (p.text[p.pos] == '+' || p.text[p.pos] == '-') {
			p.pos++
		}
		if p.digits() == 0 {
			return nil, p.errorf("bad number exponent")
		}
	}
	if p.skipping > 0 {
		return nil, nil
	}
	return json.Number(p.text[start:p.pos]), nil
}

func (p *jsonParser) digits() int {
	n := 0
	for p.pos < len(p.text) && p.text[p.pos] >= '0' && p.text[p.pos] <= '9' {
		p.pos++
		n++
	}
	return n
}
