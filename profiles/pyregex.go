package profiles

import (
	"strings"
	"time"

	"github.com/dlclark/regexp2/v2"
)

// pyRegexp is a `path:` pattern. pytranscoder evaluated it with Python's
// re.search, so rules hold Python patterns: lookahead ('^(?!.*/anime/)' is
// how a pytranscoder user negates a path), lookbehind, (?P<name>…) groups
// and (?P=name) backreferences. Go's regexp (RE2) refuses most of these,
// so patterns are compiled with regexp2 (a backtracking engine with .NET
// syntax, which is Python's for everything a path rule uses: \w and \d are
// Unicode as in Python 3, $ also matches before a final newline). The only
// syntax that differs, Python's (?P<name>…) and (?P=name), is rewritten
// to the .NET spelling first.
type pyRegexp struct {
	re *regexp2.Regexp
}

// matchTimeout bounds one match: a pattern that backtracks
// catastrophically fails to match instead of hanging the run.
const matchTimeout = 2 * time.Second

func compilePython(pattern string) (*pyRegexp, error) {
	re, err := regexp2.Compile(pythonToNet(pattern), regexp2.None)
	if err != nil {
		return nil, err
	}
	re.MatchTimeout = matchTimeout
	return &pyRegexp{re: re}, nil
}

// MatchString reports whether the pattern matches anywhere in s (Python's
// re.search). A match that times out is no match.
func (r *pyRegexp) MatchString(s string) bool {
	ok, err := r.re.MatchString(s)
	return ok && err == nil
}

// pythonToNet rewrites Python-only group syntax outside escapes and
// character classes: (?P<name> → (?<name>, (?P=name) → \k<name>.
func pythonToNet(p string) string {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			b.WriteByte(c)
			b.WriteByte(p[i+1])
			i++
			continue
		case inClass:
			if c == ']' {
				inClass = false
			}
		case c == '[':
			inClass = true
			// A ']' right after '[' or '[^' is a literal member.
			b.WriteByte(c)
			if i+1 < len(p) && p[i+1] == '^' {
				b.WriteByte('^')
				i++
			}
			if i+1 < len(p) && p[i+1] == ']' {
				b.WriteByte(']')
				i++
			}
			continue
		case strings.HasPrefix(p[i:], "(?P<"):
			b.WriteString("(?<")
			i += len("(?P<") - 1
			continue
		case strings.HasPrefix(p[i:], "(?P="):
			if end := strings.IndexByte(p[i:], ')'); end > 0 {
				b.WriteString(`\k<` + p[i+len("(?P="):i+end] + ">")
				i += end
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}
