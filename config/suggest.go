package config

import (
	"strings"

	"github.com/knadh/koanf/v2"
)

// suggest returns the candidate that word most likely misspells: the same
// word in another case, or one at most two edits away (one for short words).
// It returns "" when none is close.
func suggest(word string, candidates []string) string {
	best, bestDist := "", 3
	if len(word) <= 4 {
		bestDist = 2
	}
	lower := strings.ToLower(word)
	for _, c := range candidates {
		if strings.EqualFold(c, word) {
			return c
		}
		if d := editDistance(lower, strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// unknownReason is the reason for an unknown key among known: a hint when
// one is close, else the list.
func unknownReason(what, word string, known []string) string {
	if h := hint(word, known); h != "" {
		return "is not a known " + what + h
	}
	return "is not a known " + what + " (" + strings.Join(known, ", ") + ")"
}

// hint is ` (did you mean "x"?)` for the known key word most likely
// misspells, or "".
func hint(word string, known []string) string {
	if s := suggest(word, known); s != "" {
		return ` (did you mean "` + s + `"?)`
	}
	return ""
}

// editDistance is the edit distance between a and b, in bytes, counting a
// swap of two neighbours as one edit ("acem" for "acme"), as typos go
// (optimal string alignment). Keys are short, so the quadratic cost does not
// matter; it bails out on long inputs, which cannot be typos of a key.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return len(a) + len(b)
	}
	// d[i][j] is the distance between a[:i] and b[:j], in three rows.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// misspelledKeys reports the top-level keys that look like a misspelling of
// the engines or settings key: another case (koanf keys are case-sensitive,
// so "sqlalchemy_engines" is never read), or an edit or two away. Other keys
// belong to the app and are left alone.
func misspelledKeys(top []string, o Options) []error {
	var errs []error
	for _, key := range top {
		if key == o.Key || key == o.SettingsKey {
			continue
		}
		for _, want := range []string{o.Key, o.SettingsKey} {
			limit := 1
			if len(want) >= 10 {
				limit = 2
			}
			if strings.EqualFold(key, want) || editDistance(strings.ToLower(key), strings.ToLower(want)) <= limit {
				errs = append(errs, keyErr(key, `is not read (did you mean "`+want+`"? keys are case-sensitive)`, ErrInvalidOption))
				break
			}
		}
	}
	return errs
}

// topKeys returns k's top-level keys, sorted, without copying its values as
// k.MapKeys("") would.
func topKeys(k *koanf.Koanf) []string {
	var top []string
	for _, key := range k.Keys() { // sorted, so a key's children are adjacent
		if d := k.Delim(); d != "" {
			key, _, _ = strings.Cut(key, d)
		}
		if len(top) == 0 || top[len(top)-1] != key {
			top = append(top, key)
		}
	}
	return top
}
