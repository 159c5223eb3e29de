package chaos

import (
	"slices"
	"testing"
	"time"
)

func TestKillScheduleIsTheSeeds(t *testing.T) {
	o, err := Profile("ci")
	if err != nil {
		t.Fatal(err)
	}
	gap := 5 * time.Second
	plan := killSchedule(42, o.Kills, o.KillServices, o.Instances, gap)
	if !slices.Equal(plan, killSchedule(42, o.Kills, o.KillServices, o.Instances, gap)) {
		t.Fatal("seed 42 drew two different kill schedules")
	}
	if slices.Equal(plan, killSchedule(43, o.Kills, o.KillServices, o.Instances, gap)) {
		t.Fatal("seeds 42 and 43 drew the same kill schedule")
	}
	if len(plan) != o.Kills {
		t.Fatalf("%d kills planned, want %d", len(plan), o.Kills)
	}
	// Every round of len(services) kills hits every service once, so the ci profile kills each twice.
	per := map[string]int{}
	for i, k := range plan {
		per[k.Service]++
		if k.Instance < 0 || k.Instance >= o.Instances {
			t.Errorf("kill %d hits instance %d of %d", i, k.Instance, o.Instances)
		}
		if i > 0 && k.At <= plan[i-1].At+plan[i-1].Down {
			t.Errorf("kill %d at %s, before kill %d's restart at %s", i, k.At, i-1, plan[i-1].At+plan[i-1].Down)
		}
		if k.Down < 200*time.Millisecond || k.Down > 2*time.Second {
			t.Errorf("kill %d: down %s, want 0.2–2 s", i, k.Down)
		}
	}
	for _, s := range o.KillServices {
		if per[s] != o.Kills/len(o.KillServices) {
			t.Errorf("%s planned %d times, want %d: %s", s, per[s], o.Kills/len(o.KillServices), formatSchedule(plan, o.Instances))
		}
	}
	// Kills pick any instance: over a longer schedule every instance is hit.
	long := killSchedule(42, 40, o.KillServices, 3, gap)
	hit := map[int]int{}
	for _, k := range long {
		hit[k.Instance]++
	}
	if len(hit) != 3 {
		t.Errorf("40 kills over 3 instances hit only %v", hit)
	}
	for _, k := range killSchedule(42, 8, o.KillServices, 1, gap) {
		if k.Instance != 0 {
			t.Fatalf("one instance per service, yet a kill hits instance %d", k.Instance)
		}
	}
}

func TestProfiles(t *testing.T) {
	def, err := Profile("default")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := Profile("ci")
	if err != nil {
		t.Fatal(err)
	}
	if def.Instances != 2 || ci.Instances != 2 {
		t.Errorf("instances: default profile %d, ci profile %d; want 2 for both", def.Instances, ci.Instances)
	}
	if def.Withdrawals != 500 || def.Kills != 15 || def.FaultRate != 0.1 {
		t.Errorf("default profile %+v: want 500 withdrawals, 15 kills, 10%% faults", def)
	}
	if ci.Withdrawals != 200 || ci.Kills < 6 || ci.Kills < len(services) || ci.FaultRate != 0.1 || ci.ReplayShare <= 0 {
		t.Errorf("ci profile %+v: want 200 withdrawals, at least 6 kills and one per service, 10%% faults, replays", ci)
	}
	for name, f := range map[string]RecoveryFaults{"default": def.Recovery, "ci": ci.Recovery} {
		if f.FeeSurges == 0 || f.DroppedSends == 0 || f.ForeignNonces == 0 || f.Reorgs == 0 || f.Cancels == 0 {
			t.Errorf("%s profile recovery faults %+v: every injected kind must be on", name, f)
		}
	}
	if _, err := Profile("nightly"); err == nil {
		t.Error("an unknown profile was accepted")
	}
}

func TestWorkloadIsTheSeeds(t *testing.T) {
	o, err := Profile("ci")
	if err != nil {
		t.Fatal(err)
	}
	draw := func(seed uint64) []*spec {
		o := o
		o.Seed = seed
		return newRun(o).makeSpecs()
	}
	a, b, c := draw(5), draw(5), draw(6)
	same := func(x, y *spec) bool {
		return x.ext == y.ext && x.asset == y.asset && x.to == y.to && x.amount.Cmp(y.amount) == 0 &&
			x.replay == y.replay && x.resend == y.resend
	}
	differ, assets, replays, resends := 0, map[string]int{}, 0, 0
	for i := range a {
		if !same(a[i], b[i]) {
			t.Fatalf("seed 5 drew withdrawal %d twice differently: %+v and %+v", i, a[i], b[i])
		}
		if !same(a[i], c[i]) {
			differ++
		}
		assets[a[i].asset]++
		if a[i].replay != replayNone {
			replays++
		}
		if a[i].resend {
			resends++
		}
	}
	if differ < len(a)/2 {
		t.Errorf("seeds 5 and 6 drew %d of %d withdrawals alike", len(a)-differ, len(a))
	}
	if len(a) != o.Withdrawals || assets["POL"] < 50 || assets["USDT"] < 50 || replays == 0 || resends == 0 {
		t.Errorf("%d withdrawals, assets %v, %d replayed, %d resent: want %d of both assets, some replayed and resent",
			len(a), assets, replays, resends, o.Withdrawals)
	}
}
