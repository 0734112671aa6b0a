// Package textx holds small text helpers shared by the config decoders:
// today the one "did you mean X?" suggestion that every unknown key,
// predicate, profile and host name uses, so they all read alike.
package textx

import (
	"slices"
	"strings"
)

// Suggest returns "did you mean X?" (or "did you mean X or Y?") naming the
// known words closest to word, or "" when none is close. Case, '-' and '_'
// are ignored. A word is close when it is equal under that rule, when it
// is an abbreviation of a known word ("res" for res_height and res_width,
// "filesize" for filesize_mb), or when it is a few typos away (one for
// words of up to five letters, two for longer ones).
func Suggest(word string, known []string) string {
	names := Closest(word, known)
	switch len(names) {
	case 0:
		return ""
	case 1:
		return "did you mean " + names[0] + "?"
	}
	return "did you mean " + strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1] + "?"
}

// maxNames bounds how many names one suggestion lists.
const maxNames = 3

// Closest returns the known words Suggest would name, best first.
func Closest(word string, known []string) []string {
	nw := norm(word)
	if nw == "" {
		return nil
	}
	cands := slices.Clone(known)
	slices.Sort(cands)
	cands = slices.Compact(cands)
	for _, k := range cands {
		if norm(k) == nw {
			return []string{k}
		}
	}
	// An abbreviation: the word starts a known word (at least 3 letters,
	// and the known word is not much more than a suffix away).
	var prefixed []string
	if len(nw) >= 3 {
		for _, k := range cands {
			if nk := norm(k); strings.HasPrefix(nk, nw) {
				prefixed = append(prefixed, k)
			}
		}
	}
	if len(prefixed) > 0 && len(prefixed) <= maxNames {
		return prefixed
	}
	limit := 1
	if len(nw) > 5 {
		limit = 2
	}
	best, bestD := []string(nil), limit+1
	for _, k := range cands {
		switch d := editDistance(nw, norm(k)); {
		case d < bestD:
			best, bestD = []string{k}, d
		case d == bestD:
			best = append(best, k)
		}
	}
	if len(best) > maxNames {
		return nil
	}
	return best
}

func norm(s string) string {
	return strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(strings.TrimSpace(s)))
}

// editDistance is the Damerau-Levenshtein distance (optimal string
// alignment: a swap of two neighbours is one typo, "prot" → "port").
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
