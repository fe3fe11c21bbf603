package logs

import (
	"strings"
	"time"

	"github.com/wharf-platform/wharf/hub/logstore"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// A LogBatch names its sources "tenant/app/instance" and its lines point
// at them by index: agents ship batches so, and nodes copy records to each
// other in the same form.

// source is one of a batch's sources, parsed; ok is false for one whose
// lines are not taken.
type source struct {
	tenant, app, instance string
	ok                    bool
}

func parseSources(names []string) []source {
	out := make([]source, len(names))
	for i, n := range names {
		t, a, in, ok := splitSource(n)
		out[i] = source{t, a, in, ok}
	}
	return out
}

// splitSource splits "tenant/app/instance".
func splitSource(s string) (tenant, app, instance string, ok bool) {
	tenant, rest, ok1 := strings.Cut(s, "/")
	app, instance, ok2 := strings.Cut(rest, "/")
	return tenant, app, instance, ok1 && ok2 && tenant != "" && app != "" && instance != "" && !strings.Contains(instance, "/")
}

// records turns a batch's lines into records: the one conversion from the
// wire. Lines of a source that is not ok are left out; lines without a seq
// or that are not valid records are left out and handed to refuse.
func records(b *wire.LogBatch, srcs []source, refuse func(l *wire.LogLine, err error)) []logstore.Record {
	recs := make([]logstore.Record, 0, len(b.Lines))
	for _, l := range b.Lines {
		if int(l.Source) >= len(srcs) || !srcs[l.Source].ok || l.Seq == 0 {
			continue
		}
		s := srcs[l.Source]
		r := logstore.Record{Time: time.Unix(0, l.UnixNano), Tenant: s.tenant, App: s.app, Instance: s.instance,
			Stream: l.Stream, Seq: l.Seq, Line: string(l.Text), Partial: l.Partial}
		if err := r.Validate(); err != nil {
			refuse(l, err)
			continue
		}
		recs = append(recs, r)
	}
	return recs
}

// toWire packs records as a LogBatch, the form a copy travels in.
func toWire(recs []logstore.Record) *wire.LogBatch {
	b := &wire.LogBatch{Lines: make([]*wire.LogLine, 0, len(recs))}
	index := map[string]uint32{}
	for _, r := range recs {
		s := r.Tenant + "/" + r.App + "/" + r.Instance
		i, ok := index[s]
		if !ok {
			i = uint32(len(b.Sources))
			index[s] = i
			b.Sources = append(b.Sources, s)
		}
		b.Lines = append(b.Lines, &wire.LogLine{Source: i, Stream: r.Stream, Seq: r.Seq, UnixNano: r.Time.UnixNano(), Text: []byte(r.Line), Partial: r.Partial})
	}
	return b
}
