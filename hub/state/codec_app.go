package state

import (
	"google.golang.org/protobuf/encoding/protowire"
)

// Binary forms (codec_wire.go) of the commands every API write commits:
// the app upsert and the audit entries. Field numbers are the on-disk
// format: add fields, never renumber or reuse one.

func encodeAppUpsert(e *wenc, r *AppUpsertRequest) {
	e.str(1, r.Tenant)
	e.msg(2, func(e *wenc) { encodeSpec(e, &r.Spec) })
	if r.CAS != nil {
		e.b = protowire.AppendTag(e.b, 3, protowire.VarintType)
		e.b = protowire.AppendVarint(e.b, *r.CAS)
	}
	e.bool(4, r.Create)
	e.bool(5, r.Update)
	e.time(6, r.Time)
}

func decodeAppUpsert(b []byte) (*AppUpsertRequest, error) {
	r := &AppUpsertRequest{}
	err := eachField(b, func(f wfield) error {
		switch f.num {
		case 1:
			return setStr(&r.Tenant, f)
		case 2:
			return f.msg(func(f wfield) error { return decodeSpecField(&r.Spec, f) })
		case 3:
			v, err := f.uint()
			r.CAS = &v
			return err
		case 4:
			return setBool(&r.Create, f)
		case 5:
			return setBool(&r.Update, f)
		case 6:
			return setTime(&r.Time, f)
		}
		return nil
	})
	return r, err
}

func encodeSpec(e *wenc, s *AppSpec) {
	e.str(1, s.Name)
	e.str(2, s.Image)
	e.strs(3, s.Command)
	for k, v := range s.Env {
		e.msg(4, func(e *wenc) {
			e.str(1, k)
			e.str(2, v)
		})
	}
	if s.Instances != nil {
		e.intAlways(5, *s.Instances)
	}
	e.int(6, s.CPU)
	e.int(7, s.Memory)
	for i := range s.Ports {
		p := &s.Ports[i]
		e.msg(8, func(e *wenc) {
			e.str(1, p.Name)
			e.int(2, p.ContainerPort)
			e.str(3, p.Protocol)
			e.int(4, p.HostPort)
		})
	}
	if h := s.Health; h != nil {
		e.msg(9, func(e *wenc) {
			e.str(1, h.HTTP)
			e.int(2, h.TCP)
			e.strs(3, h.Command)
			e.int(4, h.Port)
			e.int(5, int(h.Interval))
			e.int(6, int(h.Timeout))
		})
	}
	e.strs(10, s.Pools)
	e.str(11, s.Spread)
	e.strs(12, s.Constraints)
	e.strs(13, s.FailoverPools)
	if f := s.Failover; f != nil {
		e.msg(14, func(e *wenc) {
			e.str(1, f.Mode)
			e.int(2, int(f.MaxDisconnect))
			e.str(3, f.Failback)
			e.int(4, int(f.FailbackHold))
		})
	}
	if st := s.Strategy; st != nil {
		e.msg(15, func(e *wenc) {
			e.str(1, st.Type)
			e.int(2, st.MaxSurge)
			e.int(3, st.MaxUnavailable)
			e.int(4, st.Canary)
			e.int(5, st.Weight)
			e.bool(6, st.AutoRevert)
			e.int(7, int(st.HealthDeadline))
		})
	}
	if a := s.Autoscale; a != nil {
		e.msg(16, func(e *wenc) {
			e.int(1, a.Min)
			e.int(2, a.Max)
			e.int(3, a.CPU)
			e.int(4, a.Memory)
			e.int(5, a.QPS)
			e.int(6, int(a.Window))
			e.int(7, int(a.ScaleDownDelay))
			for i := range a.Schedules {
				sc := &a.Schedules[i]
				e.msg(8, func(e *wenc) {
					e.str(1, sc.Cron)
					e.str(2, sc.Timezone)
					e.int(3, sc.Min)
					e.int(4, sc.Max)
				})
			}
		})
	}
	e.int(17, s.Secrets)
}

func decodeSpecField(s *AppSpec, f wfield) error {
	switch f.num {
	case 1:
		return setStr(&s.Name, f)
	case 2:
		return setStr(&s.Image, f)
	case 3:
		return appendStr(&s.Command, f)
	case 4:
		var k, v string
		err := f.msg(func(f wfield) error {
			switch f.num {
			case 1:
				return setStr(&k, f)
			case 2:
				return setStr(&v, f)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if s.Env == nil {
			s.Env = map[string]string{}
		}
		s.Env[k] = v
	case 5:
		n, err := f.int()
		s.Instances = &n
		return err
	case 6:
		return setInt(&s.CPU, f)
	case 7:
		return setInt(&s.Memory, f)
	case 8:
		var p Port
		err := f.msg(func(f wfield) error {
			switch f.num {
			case 1:
				return setStr(&p.Name, f)
			case 2:
				return setInt(&p.ContainerPort, f)
			case 3:
				return setStr(&p.Protocol, f)
			case 4:
				return setInt(&p.HostPort, f)
			}
			return nil
		})
		s.Ports = append(s.Ports, p)
		return err
	case 9:
		h := &Health{}
		s.Health = h
		return f.msg(func(f wfield) error {
			switch f.num {
			case 1:
				return setStr(&h.HTTP, f)
			case 2:
				return setInt(&h.TCP, f)
			case 3:
				return appendStr(&h.Command, f)
			case 4:
				return setInt(&h.Port, f)
			case 5:
				return setDuration(&h.Interval, f)
			case 6:
				return setDuration(&h.Timeout, f)
			}
			return nil
		})
	case 10:
		return appendStr(&s.Pools, f)
	case 11:
		return setStr(&s.Spread, f)
	case 12:
		return appendStr(&s.Constraints, f)
	case 13:
		return appendStr(&s.FailoverPools, f)
	case 14:
		fo := &Failover{}
		s.Failover = fo
		return f.msg(func(f wfield) error {
			switch f.num {
			case 1:
				return setStr(&fo.Mode, f)
			case 2:
				return setDuration(&fo.MaxDisconnect, f)
			case 3:
				return setStr(&fo.Failback, f)
			case 4:
				return setDuration(&fo.FailbackHold, f)
			}
			return nil
		})
	case 15:
		st := &Strategy{}
		s.Strategy = st
		return f.msg(func(f wfield) error {
			switch f.num {
			case 1:
				return setStr(&st.Type, f)
			case 2:
				return setInt(&st.MaxSurge, f)
			case 3:
				return setInt(&st.MaxUnavailable, f)
			case 4:
				return setInt(&st.Canary, f)
			case 5:
				return setInt(&st.Weight, f)
			case 6:
				return setBool(&st.AutoRevert, f)
			case 7:
				return setDuration(&st.HealthDeadline, f)
			}
			return nil
		})
	case 16:
		a := &Autoscale{}
		s.Autoscale = a
		return f.msg(func(f wfield) error {
			switch f.num {
			case 1:
				return setInt(&a.Min, f)
			case 2:
				return setInt(&a.Max, f)
			case 3:
				return setInt(&a.CPU, f)
			case 4:
				return setInt(&a.Memory, f)
			case 5:
				return setInt(&a.QPS, f)
			case 6:
				return setDuration(&a.Window, f)
			case 7:
				return setDuration(&a.ScaleDownDelay, f)
			case 8:
				var sc AutoscaleSchedule
				err := f.msg(func(f wfield) error {
					switch f.num {
					case 1:
						return setStr(&sc.Cron, f)
					case 2:
						return setStr(&sc.Timezone, f)
					case 3:
						return setInt(&sc.Min, f)
					case 4:
						return setInt(&sc.Max, f)
					}
					return nil
				})
				a.Schedules = append(a.Schedules, sc)
				return err
			}
			return nil
		})
	case 17:
		return setInt(&s.Secrets, f)
	}
	return nil
}

func encodeAuditRecord(e *wenc, r *AuditRecordRequest) {
	if r.Entries != nil && len(r.Entries) == 0 {
		e.bad = true // JSON keeps an empty list ([]): the decoder would make it nil
		return
	}
	for i := range r.Entries {
		a := &r.Entries[i]
		e.msg(1, func(e *wenc) { encodeAuditEntry(e, a) })
	}
	e.int(2, r.Keep)
}

func encodeAuditEntry(e *wenc, a *AuditEntry) {
	e.uint(1, a.Seq)
	e.uint(2, a.Index)
	e.time(3, a.Time)
	e.str(4, a.Actor)
	e.str(5, a.ActorID)
	e.str(6, a.Role)
	e.str(7, a.Tenant)
	e.str(8, a.Method)
	e.str(9, a.Path)
	e.int(10, a.Status)
	e.str(11, a.Object)
	e.str(12, a.Node)
}

func decodeAuditRecord(b []byte) (*AuditRecordRequest, error) {
	r := &AuditRecordRequest{}
	err := eachField(b, func(f wfield) error {
		switch f.num {
		case 1:
			a, err := decodeAuditEntry(f)
			r.Entries = append(r.Entries, a)
			return err
		case 2:
			return setInt(&r.Keep, f)
		}
		return nil
	})
	return r, err
}

func decodeAuditEntry(f wfield) (AuditEntry, error) {
	var a AuditEntry
	err := f.msg(func(f wfield) error {
		switch f.num {
		case 1:
			return setUint(&a.Seq, f)
		case 2:
			return setUint(&a.Index, f)
		case 3:
			return setTime(&a.Time, f)
		case 4:
			return setStr(&a.Actor, f)
		case 5:
			return setStr(&a.ActorID, f)
		case 6:
			return setStr(&a.Role, f)
		case 7:
			return setStr(&a.Tenant, f)
		case 8:
			return setStr(&a.Method, f)
		case 9:
			return setStr(&a.Path, f)
		case 10:
			return setInt(&a.Status, f)
		case 11:
			return setStr(&a.Object, f)
		case 12:
			return setStr(&a.Node, f)
		}
		return nil
	})
	return a, err
}

// encodeAudited writes the wrapped command as bytes (an entry of either
// form), the entry as the audit record's entry message.
func encodeAudited(e *wenc, r *AuditedRequest) {
	if r.Command != nil && len(r.Command) == 0 {
		e.bad = true // JSON keeps an empty value (""): the decoder would make it nil
		return
	}
	if len(r.Command) > 0 {
		e.b = protowire.AppendTag(e.b, 1, protowire.BytesType)
		e.b = protowire.AppendBytes(e.b, r.Command)
	}
	e.msg(2, func(e *wenc) { encodeAuditEntry(e, &r.Entry) })
	e.int(3, r.Keep)
}

func decodeAudited(b []byte) (*AuditedRequest, error) {
	r := &AuditedRequest{}
	err := eachField(b, func(f wfield) error {
		switch f.num {
		case 1:
			if f.typ != protowire.BytesType {
				return errWireType
			}
			r.Command = append([]byte(nil), f.b...)
			return nil
		case 2:
			var err error
			r.Entry, err = decodeAuditEntry(f)
			return err
		case 3:
			return setInt(&r.Keep, f)
		}
		return nil
	})
	return r, err
}
