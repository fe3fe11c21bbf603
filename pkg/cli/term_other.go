//go:build !(linux || darwin)

package cli

import "os"

func termWidth(*os.File) int { return 0 }
