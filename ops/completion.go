package ops

import (
	"fmt"
	"sort"
	"strings"
)

// completionWords maps "" to the first words after `sluice ops` and each group to its subcommands;
// the scripts are made from the command table, so they never miss a command.
func completionWords() (top []string, subs map[string][]string) {
	subs = map[string][]string{}
	seen := map[string]bool{}
	for _, c := range commandTable() {
		first, rest, hasSub := strings.Cut(c.path, " ")
		if !seen[first] {
			seen[first] = true
			top = append(top, first)
		}
		if hasSub {
			subs[first] = append(subs[first], rest)
		}
	}
	top = append(top, "help")
	subs["completion"] = []string{"bash", "zsh", "fish"}
	return top, subs
}

const commonFlags = "--url --json --timeout --help"
const actionFlags = "--dry-run --yes --reason --request-id"

func (r *runner) completion(args []string) error {
	top, subs := completionWords()
	groups := make([]string, 0, len(subs))
	for g := range subs {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	switch args[0] {
	case "bash":
		var cases strings.Builder
		for _, g := range groups {
			fmt.Fprintf(&cases, "      %s) words=%q ;;\n", g, strings.Join(subs[g], " "))
		}
		fmt.Fprintf(r.stdout, `# bash completion for sluice ops. Install:
#   sluice ops completion bash > /etc/bash_completion.d/sluice   (or source it from ~/.bashrc)
_sluice_ops() {
  local cur=${COMP_WORDS[COMP_CWORD]} words=""
  if [[ ${COMP_WORDS[1]} != ops ]]; then
    [[ $COMP_CWORD -eq 1 ]] && COMPREPLY=($(compgen -W "ops api signer broadcaster monitor recovery all dev migrate keys" -- "$cur"))
    return
  fi
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "%s %s" -- "$cur"))
    return
  fi
  case $COMP_CWORD in
    2) words=%q ;;
    3)
      case ${COMP_WORDS[2]} in
%s      esac ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _sluice_ops sluice
`, commonFlags, actionFlags, strings.Join(top, " "), cases.String())
	case "zsh":
		var cases strings.Builder
		for _, g := range groups {
			fmt.Fprintf(&cases, "        %s) compadd -- %s ;;\n", g, strings.Join(subs[g], " "))
		}
		fmt.Fprintf(r.stdout, `#compdef sluice
# zsh completion for sluice ops. Install:
#   sluice ops completion zsh > "${fpath[1]}/_sluice"   (then restart zsh, or run compinit)
_sluice() {
  if [[ $words[2] != ops ]]; then
    (( CURRENT == 2 )) && compadd -- ops api signer broadcaster monitor recovery all dev migrate keys
    return
  fi
  if [[ $PREFIX == -* ]]; then
    compadd -- %s %s
    return
  fi
  case $CURRENT in
    3) compadd -- %s ;;
    4)
      case $words[3] in
%s      esac ;;
  esac
}
compdef _sluice sluice
`, commonFlags, actionFlags, strings.Join(top, " "), cases.String())
	case "fish":
		fmt.Fprint(r.stdout, "# fish completion for sluice ops. Install:\n#   sluice ops completion fish > ~/.config/fish/completions/sluice.fish\n")
		fmt.Fprint(r.stdout, "complete -c sluice -f\n")
		fmt.Fprint(r.stdout, "complete -c sluice -n '__fish_use_subcommand' -a 'ops api signer broadcaster monitor recovery all dev migrate keys'\n")
		fmt.Fprintf(r.stdout, "complete -c sluice -n '__fish_seen_subcommand_from ops; and test (count (commandline -opc)) -eq 2' -a '%s'\n", strings.Join(top, " "))
		for _, g := range groups {
			fmt.Fprintf(r.stdout, "complete -c sluice -n '__fish_seen_subcommand_from ops; and __fish_seen_subcommand_from %s; and test (count (commandline -opc)) -eq 3' -a '%s'\n",
				g, strings.Join(subs[g], " "))
		}
		for _, f := range strings.Fields(commonFlags + " " + actionFlags) {
			fmt.Fprintf(r.stdout, "complete -c sluice -n '__fish_seen_subcommand_from ops' -l %s\n", strings.TrimPrefix(f, "--"))
		}
	default:
		return usagef("unknown shell %q: bash, zsh or fish", args[0])
	}
	return nil
}
