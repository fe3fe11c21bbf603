package drain

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// esSender indexes batches with Elasticsearch's bulk API
// (https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-bulk).
// Each line is a "create" with an id derived from its instance and sequence
// number, so a replayed batch gets 409 Conflict for the lines already
// indexed and duplicates nothing.
type esSender struct {
	p     *poster
	index string
}

var _ Sender = (*esSender)(nil)

func newES(t Target, o Options) *esSender {
	return &esSender{
		p:     newPoster(t, "/_bulk", "application/x-ndjson", o),
		index: strings.TrimPrefix(t.URL.Path, "/"),
	}
}

// esID is the document id of a line: the first 20 bytes of
// SHA-256(tenant \0 app \0 instance \0 seq), in hex.
func esID(l Line) string {
	h := sha256.New()
	h.Write([]byte(l.Tenant + "\x00" + l.App + "\x00" + l.Instance + "\x00" + strconv.FormatUint(l.Seq, 10)))
	return hex.EncodeToString(h.Sum(nil)[:20])
}

type esAction struct {
	Create esCreate `json:"create"`
}

type esCreate struct {
	Index string `json:"_index"`
	ID    string `json:"_id"`
}

type esDoc struct {
	Timestamp string `json:"@timestamp"`
	Tenant    string `json:"tenant"`
	App       string `json:"app"`
	Instance  string `json:"instance"`
	Stream    string `json:"stream"`
	Seq       uint64 `json:"seq"`
	Message   string `json:"message"`
}

// esBody returns the NDJSON bulk request for lines.
func esBody(index string, lines []Line) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b) // Encode ends each value with '\n'
	for _, l := range lines {
		if err := enc.Encode(esAction{esCreate{Index: index, ID: esID(l)}}); err != nil {
			return nil, err
		}
		doc := esDoc{
			Timestamp: l.Time.UTC().Format(time.RFC3339Nano),
			Tenant:    l.Tenant,
			App:       l.App,
			Instance:  l.Instance,
			Stream:    l.Stream,
			Seq:       l.Seq,
			Message:   l.Line,
		}
		if err := enc.Encode(doc); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// esBulkResponse is the part of a bulk response that Send reads.
type esBulkResponse struct {
	Errors bool                    `json:"errors"`
	Items  []map[string]esBulkItem `json:"items"`
}

type esBulkItem struct {
	ID     string `json:"_id"`
	Status int    `json:"status"`
	Error  *struct {
		Type   string `json:"type"`
		Reason string `json:"reason"`
	} `json:"error"`
}

// Send indexes the batch in one bulk request. Lines that already exist
// (409) count as delivered. If any line got 429 or 5xx the error is
// temporary, and resending the whole batch is safe; any other failed line
// makes the error permanent.
func (s *esSender) Send(ctx context.Context, lines []Line) error {
	if len(lines) == 0 {
		return nil
	}
	body, err := esBody(s.index, lines)
	if err != nil {
		return permanent("encode elasticsearch bulk: %w", err)
	}
	resp, err := s.p.post(ctx, body, 64<<20)
	if err != nil {
		return fmt.Errorf("elasticsearch: %w", err)
	}
	var r esBulkResponse
	if err := json.Unmarshal(resp, &r); err != nil {
		return fmt.Errorf("elasticsearch: decode bulk response: %w", err)
	}
	if !r.Errors {
		return nil
	}
	var retry, failed int
	var first string
	for _, item := range r.Items {
		for _, it := range item {
			switch {
			case it.Status == 200 || it.Status == 201 || it.Status == 409:
			case it.Status == 429 || it.Status >= 500:
				retry++
			default:
				failed++
				if first == "" {
					first = fmt.Sprintf("status %d", it.Status)
					if it.Error != nil {
						first += ": " + it.Error.Type + ": " + it.Error.Reason
					}
				}
			}
		}
	}
	switch {
	case retry > 0:
		return fmt.Errorf("elasticsearch: %d of %d lines rejected for now (429 or 5xx)", retry, len(lines))
	case failed > 0:
		return permanent("elasticsearch: %d of %d lines rejected, first: %s", failed, len(lines), first)
	case len(r.Items) != len(lines):
		return fmt.Errorf("elasticsearch: bulk response reports errors and has %d items for %d lines", len(r.Items), len(lines))
	}
	return nil // the errors were 409s: lines indexed before
}

// Close closes idle connections.
func (s *esSender) Close() error { return s.p.close() }
