// Command docgen writes the configuration reference (docs/config.md) from
// the configuration types; run it through `go generate ./config`.
package main

import (
	"fmt"
	"os"

	"github.com/aupguard/aupguard/config"
	"github.com/aupguard/aupguard/config/internal/docgen"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: docgen OUTPUT.md (run from the config directory)")
		os.Exit(2)
	}
	b, err := docgen.Generate("..", config.Default())
	if err != nil {
		fmt.Fprintln(os.Stderr, "docgen:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(os.Args[1], b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "docgen:", err)
		os.Exit(1)
	}
}
