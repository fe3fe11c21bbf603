package billing

import (
	"encoding/csv"
	"html/template"
	"io"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// CSVHeader returns the header row of invoices as CSV: one row per line,
// the tenant in every row (so that an export of every tenant is one
// table); the total is the sum of the amount column.
func CSVHeader() []string {
	return []string{"tenant", "month", "plan", "item", "quantity", "unit", "unit_price", "amount", "currency", "used", "included", "final"}
}

// WriteCSV writes invoices as CSV: the header row, then a row per line.
func WriteCSV(w io.Writer, invs []apitypes.Invoice) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader()); err != nil {
		return err
	}
	for _, inv := range invs {
		final := "false"
		if inv.Final {
			final = "true"
		}
		for _, l := range inv.Lines {
			if err := cw.Write([]string{inv.Tenant, inv.Month, l.Plan, l.Item, l.Quantity, l.Unit, l.UnitPrice, l.Amount, inv.Currency, l.Used, l.Included, final}); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// invoicePage is a printable page of one or more invoices; html/template
// escapes every value.
var invoicePage = template.Must(template.New("invoice").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Wharf invoices{{if .}} {{(index . 0).Month}}{{end}}</title>
<style>
body{font-family:sans-serif;margin:2em;color:#111}
table{border-collapse:collapse;width:100%;margin-bottom:2em}
th,td{border-bottom:1px solid #ccc;padding:.3em .6em;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
section{page-break-after:always}
</style></head><body>
{{range .}}<section class="invoice">
<h1>Invoice {{.Tenant}} {{.Month}}</h1>
<p>Currency: {{.Currency}}. {{if .Final}}Final.{{else}}Not final: the month is not closed yet.{{end}}</p>
<table>
<thead><tr><th>Plan</th><th>Item</th><th class="n">Quantity</th><th>Unit</th><th class="n">Unit price</th><th class="n">Amount</th></tr></thead>
<tbody>
{{range .Lines}}<tr><td>{{.Plan}}</td><td>{{.Item}}</td><td class="n">{{.Quantity}}</td><td>{{.Unit}}</td><td class="n">{{.UnitPrice}}</td><td class="n">{{.Amount}}</td></tr>
{{end}}</tbody>
<tfoot><tr><th colspan="5">Total</th><th class="n">{{.Total}} {{.Currency}}</th></tr></tfoot>
</table>
</section>
{{else}}<p>No invoices.</p>
{{end}}</body></html>
`))

// WriteHTML writes invoices as a printable HTML page.
func WriteHTML(w io.Writer, invs []apitypes.Invoice) error {
	if len(invs) == 0 {
		invs = []apitypes.Invoice{}
	}
	return invoicePage.Execute(w, invs)
}
