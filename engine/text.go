package engine

import "unicode/utf8"

// Truncate returns s cut to at most n characters (runes: Zuora's limits
// count characters, not bytes), never inside a UTF-8 sequence. Invalid
// UTF-8 in s is kept as it is up to the cut.
func Truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s // n bytes hold at most n runes
	}
	i := 0
	for count := 0; i < len(s) && count < n; count++ {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i]
}
