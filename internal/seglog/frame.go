package seglog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// FrameHeaderLen is the length of a frame's header: the payload length and
// the CRC, both uint32 little endian.
const FrameHeaderLen = 8

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// ErrShort means the bytes end before the frame (or file) does: a torn
	// tail when found at the end of a segment.
	ErrShort = errors.New("short record")
	// ErrCorrupt means the bytes are not a valid frame, record, header or
	// state file.
	ErrCorrupt = errors.New("corrupt record")
)

// frameCRC is the CRC32C of the 4 length bytes followed by the payload:
// covering the length means a zero-filled or garbage tail never decodes.
func frameCRC(lenBytes, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(lenBytes, castagnoli), castagnoli, payload)
}

// BeginFrame appends a frame header to dst, to be filled by EndFrame once
// the payload is appended after it, and returns dst and the header's
// offset in it.
func BeginFrame(dst []byte) ([]byte, int) {
	return append(dst, 0, 0, 0, 0, 0, 0, 0, 0), len(dst)
}

// EndFrame fills the header at start with the length and CRC of the
// payload that follows it up to the end of dst.
func EndFrame(dst []byte, start int) []byte {
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start-FrameHeaderLen))
	binary.LittleEndian.PutUint32(dst[start+4:], frameCRC(dst[start:start+4], dst[start+FrameHeaderLen:]))
	return dst
}

// FrameLen returns the framed length announced by the header at the start
// of buf (ErrShort when buf is shorter than a header, ErrCorrupt for a
// payload length outside 1..maxPayload). It does not check the CRC.
func FrameLen(buf []byte, maxPayload int) (int, error) {
	if len(buf) < FrameHeaderLen {
		return 0, ErrShort
	}
	plen := binary.LittleEndian.Uint32(buf)
	if plen < 1 || int64(plen) > int64(maxPayload) {
		return 0, fmt.Errorf("%w: payload length %d", ErrCorrupt, plen)
	}
	return FrameHeaderLen + int(plen), nil
}

// ReadFrame checks the frame at the start of buf and returns its payload
// (aliasing buf) and its framed length. It never panics; a nil error
// guarantees the CRC matched.
func ReadFrame(buf []byte, maxPayload int) (payload []byte, n int, err error) {
	n, err = FrameLen(buf, maxPayload)
	if err != nil {
		return nil, 0, err
	}
	if len(buf) < n {
		return nil, 0, ErrShort
	}
	payload = buf[FrameHeaderLen:n]
	if got, want := frameCRC(buf[:4], payload), binary.LittleEndian.Uint32(buf[4:]); got != want {
		return nil, 0, fmt.Errorf("%w: crc %08x, want %08x", ErrCorrupt, got, want)
	}
	return payload, n, nil
}
