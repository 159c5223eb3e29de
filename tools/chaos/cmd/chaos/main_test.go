package main

import (
	"testing"

	"github.com/sluice-custody/sluice/tools/chaos"
)

func TestReplayCommandKeepsWhatTheRunDid(t *testing.T) {
	profile, seed := "ci", uint64(0)
	o, err := chaos.Profile(profile)
	if err != nil {
		t.Fatal(err)
	}
	ks := "api,signer,broadcaster,monitor"
	fs := flags(&o, &profile, &seed, &ks)
	if err := fs.Parse([]string{"--queue", "sqs", "--mysql", "root@tcp(127.0.0.1:3306)/", "--seed", "7",
		"--dir", "/tmp/x", "--profile", "ci", "--kills", "9"}); err != nil {
		t.Fatal(err)
	}
	got := replayCommand(fs, 7)
	want := `make chaos CHAOS_FLAGS="--profile ci --kills 9 --queue sqs --seed 7"`
	if got != want {
		t.Fatalf("replay command\n got %s\nwant %s", got, want)
	}
	// A clock seed is named too: the replay must not draw a new one.
	fs = flags(&o, &profile, &seed, &ks)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if got, want := replayCommand(fs, 123), `make chaos CHAOS_FLAGS="--seed 123"`; got != want {
		t.Fatalf("replay command\n got %s\nwant %s", got, want)
	}
}

func TestReplayCommandNamesInstancesWhenNotDefault(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--profile", "ci", "--instances", "3", "--seed", "9"}, `make chaos CHAOS_FLAGS="--profile ci --instances 3 --seed 9"`},
		{[]string{"--profile", "ci", "--instances", "2", "--seed", "9"}, `make chaos CHAOS_FLAGS="--profile ci --seed 9"`},
	} {
		profile, seed := "default", uint64(0)
		o, err := chaos.Profile("ci")
		if err != nil {
			t.Fatal(err)
		}
		ks := "api,signer,broadcaster,monitor"
		fs := flags(&o, &profile, &seed, &ks)
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		if got := replayCommand(fs, 9); got != c.want {
			t.Errorf("%v: replay command\n got %s\nwant %s", c.args, got, c.want)
		}
	}
}
