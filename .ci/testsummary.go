//go:build ignore

// testsummary reads `go test -json` events on stdin, prints the output of
// failed and skipped tests and each package's result line, and exits
// non-zero if any test failed or was skipped, or a package failed to build.
// Skips count as failures because caddytest skips (rather than fails) when
// it cannot start Caddy, which would otherwise hide every end-to-end test.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

func main() {
	var passed, failed, skipped int
	pkgFailed := false
	output := map[string][]string{} // package/test -> lines
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			fmt.Println(string(line)) // build errors arrive as plain text
			continue
		}
		id := e.Package + " " + e.Test
		switch e.Action {
		case "output":
			if e.Test == "" {
				if strings.HasPrefix(e.Output, "ok") || strings.HasPrefix(e.Output, "FAIL") || strings.HasPrefix(e.Output, "---") || strings.Contains(e.Output, "[no test files]") {
					fmt.Print(e.Output)
				}
			} else {
				output[id] = append(output[id], e.Output)
			}
		case "pass":
			if e.Test != "" {
				passed++
			}
			delete(output, id)
		case "skip":
			if e.Test != "" {
				skipped++
				fmt.Printf("SKIPPED (counts as failure): %s\n%s", id, strings.Join(output[id], ""))
			}
			delete(output, id)
		case "fail":
			if e.Test != "" {
				failed++
				fmt.Printf("FAILED: %s\n%s", id, strings.Join(output[id], ""))
			} else {
				pkgFailed = true
			}
			delete(output, id)
		}
	}
	fmt.Printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 || skipped > 0 || pkgFailed || passed == 0 {
		os.Exit(1)
	}
}
