package seglog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"

	"github.com/wharf-platform/wharf/internal/atomicfile"
)

// StatePerm is the mode of state files.
const StatePerm = 0o640

// Seal appends the CRC32C of all of buf (a magic followed by a body) to
// it: the layout of state and index files.
func Seal(buf []byte) []byte {
	return binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, castagnoli))
}

// Unseal checks a sealed file's magic (one of magics) and CRC and returns
// the magic and the body between them.
func Unseal(buf []byte, magics ...string) (magic string, body []byte, err error) {
	for _, m := range magics {
		if len(buf) >= len(m)+4 && string(buf[:len(m)]) == m {
			magic = m
			break
		}
	}
	if magic == "" {
		return "", nil, fmt.Errorf("%w: bad file header (want %q)", ErrCorrupt, magics[0])
	}
	body, sum := buf[:len(buf)-4], binary.LittleEndian.Uint32(buf[len(buf)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return "", nil, fmt.Errorf("%w: %s crc mismatch", ErrCorrupt, magic)
	}
	return magic, body[len(magic):], nil
}

// ReadState reads the state file at path; a missing file yields nil and
// no error. Unseal checks what it read.
func ReadState(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	return data, nil
}

// WriteState replaces the state file at path with data (already sealed)
// atomically and durably (see internal/atomicfile): when it returns nil,
// the new state survives power loss.
func WriteState(path string, data []byte) error {
	if err := atomicfile.Write(path, data, StatePerm); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

// CleanState removes what interrupted WriteStates of path left behind.
// Call it when opening the log, before any WriteState.
func CleanState(path string) error {
	return atomicfile.RemoveTemps(path)
}
