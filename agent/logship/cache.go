package logship

// The shipper mostly reads lines moments after they were appended. The
// buffer keeps the newest appended lines in memory (their texts are the
// strings Append was given: no copies) with their positions, in a ring,
// so that Read serves them without reading the segment back, decoding it
// and checking its CRCs. Anything not cached (older lines, after a Rewind
// or a restart) is read from disk as before; the cache never decides what
// is acked or dropped.

// Bounds of the cache: lines and bytes of text.
const (
	cacheLines = 1 << 16
	cacheBytes = 16 << 20
)

type cached struct {
	at   cursor // where the record starts
	size int64  // its framed length
	line Line
}

type lineCache struct {
	ring  []cached // allocated on first use
	head  int      // index of the oldest
	n     int
	bytes int
	hint  int // logical index where the next lookup likely succeeds
}

func (c *lineCache) at(i int) *cached { return &c.ring[(c.head+i)%len(c.ring)] }

func (c *lineCache) add(at cursor, size int64, l Line) {
	if c.ring == nil {
		c.ring = make([]cached, cacheLines)
	}
	for c.n == len(c.ring) || (c.n > 0 && c.bytes+len(l.Text) > cacheBytes) {
		old := c.at(0)
		c.bytes -= len(old.line.Text)
		*old = cached{}
		c.head = (c.head + 1) % len(c.ring)
		c.n--
		c.hint = max(c.hint-1, 0)
	}
	*c.at(c.n) = cached{at: at, size: size, line: l}
	c.n++
	c.bytes += len(l.Text)
}

// get returns the line starting at cur, if cached.
func (c *lineCache) get(cur cursor) (cached, bool) {
	if c.hint < c.n && c.at(c.hint).at == cur {
		c.hint++
		return *c.at(c.hint - 1), true
	}
	// Binary search: positions increase in append order.
	lo, hi := 0, c.n
	for lo < hi {
		m := (lo + hi) / 2
		at := c.at(m).at
		if at.id < cur.id || (at.id == cur.id && at.off < cur.off) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < c.n && c.at(lo).at == cur {
		c.hint = lo + 1
		return *c.at(lo), true
	}
	return cached{}, false
}

func (c *lineCache) reset() { *c = lineCache{} }
