package billing

import (
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// Out returns the bill as the API shows it.
func (b *Bill) Out() apitypes.Bill {
	return apitypes.Bill{Tenant: b.Tenant, Day: b.Day.Format("2006-01-02"), Plan: b.Plan, From: b.From, To: b.To,
		Lines: linesOut(b.Lines, b.Currency), Total: b.Currency.Format(b.Total), Currency: b.Currency.Code, Final: b.Final}
}

// Out returns the invoice as the API shows it.
func (inv *Invoice) Out() apitypes.Invoice {
	return apitypes.Invoice{Tenant: inv.Tenant, Month: inv.Month.Format("2006-01"), Currency: inv.Currency.Code,
		Lines: linesOut(inv.Lines, inv.Currency), Total: inv.Currency.Format(inv.Total), Final: inv.Final}
}

func linesOut(ls []Line, cur Currency) []apitypes.BillLine {
	out := make([]apitypes.BillLine, len(ls))
	for i, l := range ls {
		out[i] = apitypes.BillLine{Item: l.Item, Plan: l.Plan, Quantity: FormatQuantity(l.Quantity), Unit: l.Unit, UnitPrice: l.UnitPrice,
			Amount: cur.Format(l.Amount), Used: FormatQuantity(l.Used), Included: FormatQuantity(l.Included)}
	}
	return out
}
