package engine

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestTruncate(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("€", 120) // 3 bytes each
	got := Truncate(long, 100)
	require.True(t, utf8.ValidString(got))
	require.Equal(t, 100, utf8.RuneCountInString(got), "characters, not bytes")
	require.Equal(t, "ab€", Truncate("ab€d", 3))
	require.Equal(t, "short", Truncate("short", 10))
	require.Equal(t, "", Truncate("x", 0))
	require.Equal(t, "aé", Truncate("aé", 2))
}
