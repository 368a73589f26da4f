package main

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestREADMEListsEverySetting keeps the README's configuration table true.
func TestREADMEListsEverySetting(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	readme := string(b)
	cfg := DefaultConfig()
	for _, s := range cfg.settings() {
		require.True(t, strings.Contains(readme, "`"+s.env+"`"), "README.md does not document %s", s.env)
		require.True(t, strings.Contains(readme, "`--"+s.flag+"`"), "README.md does not document --%s", s.flag)
	}
	for _, c := range commands() {
		require.True(t, strings.Contains(readme, "billsync "+c.name), "README.md does not mention the %s command", c.name)
	}
}
