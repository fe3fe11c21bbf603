// Command stamped prints the version a build of it carries, so that a test
// can check the Makefile's link-time stamp reaches internal/version.
package main

import (
	"fmt"

	"github.com/wharf-platform/wharf/internal/version"
)

func main() { fmt.Println(version.Get().Version) }
