package sdk

import (
	"fmt"
	"slices"
	"strings"
)

// UnknownOption returns nil when every key of options is one of known.
// Otherwise it returns an error naming the first unknown key in sorted
// order and, when a known key is a likely misspelling of it, suggesting
// that key:
//
//	unknown option "pasword" (did you mean "password"?)
//	unknown option "colour" (known: dir)
//
// A plugin calls it first in Configure, so that a misspelled option fails
// at configuration (and in `campaignd config check`) instead of being
// ignored. The error is plain: wrap it in a ConfigError, or return it from
// Configure as is (plugin.Serve makes it ClassConfig).
func UnknownOption(options map[string]string, known ...string) error {
	var unknown []string
	for k := range options {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	k := unknown[0]
	if s := closest(k, known); s != "" {
		return fmt.Errorf("unknown option %q (did you mean %q?)", k, s)
	}
	return fmt.Errorf("unknown option %q (known: %s)", k, strings.Join(known, ", "))
}

// closest returns the known key nearest to k when it is near enough to be
// a typo (an edit distance of at most a third of its length, at least 1,
// case ignored), else "".
func closest(k string, known []string) string {
	best, bestD := "", 0
	for _, c := range known {
		d := editDistance(strings.ToLower(k), strings.ToLower(c))
		if d <= max(1, len(c)/3) && (best == "" || d < bestD) {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b in bytes.
func editDistance(a, b string) int {
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
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
