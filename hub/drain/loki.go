package drain

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
)

// lokiSender pushes batches to Loki's push API
// (https://grafana.com/docs/loki/latest/reference/loki-http-api/#ingest-logs).
type lokiSender struct {
	p *poster
}

var _ Sender = (*lokiSender)(nil)

func newLoki(t Target, o Options) *lokiSender {
	return &lokiSender{p: newPoster(t, "", "application/json", o)}
}

// lokiLabels is the label set of a stream; empty labels are left out, as
// Loki does not keep them.
type lokiLabels struct {
	Tenant   string `json:"tenant,omitempty"`
	App      string `json:"app,omitempty"`
	Instance string `json:"instance,omitempty"`
	Stream   string `json:"stream,omitempty"`
}

type lokiStream struct {
	Stream lokiLabels  `json:"stream"`
	Values [][2]string `json:"values"` // [unix nanoseconds, line]
}

type lokiPush struct {
	Streams []*lokiStream `json:"streams"`
}

// lokiBody groups lines by label set, in the order the sets first appear.
func lokiBody(lines []Line) ([]byte, error) {
	var push lokiPush
	byLabels := make(map[lokiLabels]*lokiStream)
	for _, l := range lines {
		k := lokiLabels{Tenant: l.Tenant, App: l.App, Instance: l.Instance, Stream: l.Stream}
		s := byLabels[k]
		if s == nil {
			s = &lokiStream{Stream: k}
			byLabels[k] = s
			push.Streams = append(push.Streams, s)
		}
		s.Values = append(s.Values, [2]string{strconv.FormatInt(l.Time.UnixNano(), 10), l.Line})
	}
	return json.Marshal(push)
}

// Send pushes the batch in one request.
func (s *lokiSender) Send(ctx context.Context, lines []Line) error {
	if len(lines) == 0 {
		return nil
	}
	body, err := lokiBody(lines)
	if err != nil {
		return permanent("encode loki push: %w", err)
	}
	if _, err := s.p.post(ctx, body, 64<<10); err != nil {
		return fmt.Errorf("loki: %w", err)
	}
	return nil
}

// Close closes idle connections.
func (s *lokiSender) Close() error { return s.p.close() }
