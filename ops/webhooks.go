package ops

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/sluice-custody/sluice/admin"
)

func (r *runner) webhooksDead(_ []string) error {
	var page admin.Page[admin.WebhookDeliveryView]
	if ok, err := r.get("/admin/v1/webhooks/dead", r.query(), &page); !ok {
		return err
	}
	if len(page.Items) == 0 {
		fmt.Fprintln(r.stdout, "no dead-lettered webhook deliveries")
		return nil
	}
	t := r.table("ID", "CLIENT", "ENDPOINT", "EVENT", "WITHDRAWAL", "ATTEMPTS", "LAST", "CREATED", "URL")
	for _, d := range page.Items {
		t.row(strconv.FormatInt(d.ID, 10), d.Client+" ("+strconv.FormatInt(d.ClientID, 10)+")", strconv.FormatInt(d.EndpointID, 10),
			d.EventType, d.WithdrawalID, strconv.Itoa(d.Attempts), lastOutcome(d.LastStatusCode, d.LastError),
			r.age(parseTime(d.CreatedAt)), d.EndpointURL)
	}
	if err := t.flush(); err != nil {
		return err
	}
	r.nextPage(page.NextCursor)
	fmt.Fprintln(r.stdout, "\nsee one: sluice ops webhooks show <id>; send again: sluice ops webhooks redeliver <id>… or --endpoint <endpoint id>")
	return nil
}

func lastOutcome(code *int, err string) string {
	switch {
	case code != nil && err != "" && err != "HTTP "+strconv.Itoa(*code):
		return strconv.Itoa(*code) + " " + err
	case code != nil:
		return strconv.Itoa(*code)
	}
	return dash(err)
}

func (r *runner) webhooksShow(args []string) error {
	var d admin.WebhookDeliveryDetail
	if ok, err := r.get("/admin/v1/webhooks/deliveries/"+url.PathEscape(args[0]), nil, &d); !ok {
		return err
	}
	v := d.Delivery
	next := ""
	if v.NextAttemptAt != nil {
		next = timeText(parseTime(*v.NextAttemptAt))
	}
	delivered := ""
	if v.DeliveredAt != nil {
		delivered = timeText(parseTime(*v.DeliveredAt))
	}
	redelivered := ""
	if v.Redeliveries > 0 {
		redelivered = strconv.Itoa(v.Redeliveries) + " time(s), last by " + dash(v.RedeliveredBy)
	}
	if err := kv(r.stdout, "id", strconv.FormatInt(v.ID, 10), "state", v.State, "event", v.EventType+" "+v.EventID,
		"withdrawal", v.WithdrawalID, "seq", strconv.Itoa(v.Seq), "client", v.Client+" ("+strconv.FormatInt(v.ClientID, 10)+")",
		"endpoint", strconv.FormatInt(v.EndpointID, 10)+" "+v.EndpointURL, "attempts", strconv.Itoa(v.Attempts),
		"last", lastOutcome(v.LastStatusCode, v.LastError), "created", timeText(parseTime(v.CreatedAt)),
		"next attempt", next, "delivered", delivered, "redelivered", redelivered); err != nil {
		return err
	}
	if len(d.Attempts) > 0 {
		fmt.Fprintln(r.stdout, "\nattempts:")
		t := r.table("AT", "STATUS", "LATENCY", "ERROR")
		for _, a := range d.Attempts {
			status := "-"
			if a.StatusCode != nil {
				status = strconv.Itoa(*a.StatusCode)
			}
			t.row(timeText(parseTime(a.At)), status, strconv.FormatInt(a.LatencyMS, 10)+" ms", dash(a.Error))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(d.Event) > 0 && string(d.Event) != "null" {
		fmt.Fprintln(r.stdout, "\nevent:")
		return r.printJSON(d.Event)
	}
	return nil
}

// webhooksRedeliver sends deliveries again: each id given (one action each), or every dead one of
// --endpoint (one action; --since narrows it).
func (r *runner) webhooksRedeliver(args []string) error {
	if r.opts.endpoint != "" {
		if len(args) > 0 {
			return &usageError{msg: "give delivery ids or --endpoint, not both"}
		}
		return actionRun(admin.ActionWebhookRedeliver, func([]string) (string, error) { return "endpoint/" + r.opts.endpoint, nil })(r, nil)
	}
	switch {
	case r.opts.since != "":
		return &usageError{msg: "--since applies to --endpoint (every dead delivery of an endpoint)"}
	case len(args) == 0:
		return &usageError{msg: "give one or more delivery ids, or --endpoint N"}
	case len(args) > 1 && r.requestID != "":
		return &usageError{msg: "--request-id replays one request: give one delivery id with it"}
	}
	for _, id := range args {
		if err := actionRun(admin.ActionWebhookRedeliver, plainTarget)(r, []string{id}); err != nil {
			return err
		}
	}
	return nil
}
