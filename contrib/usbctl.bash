# bash completion for usbctl: commands, options, domain names from
# "virsh list --name", devices from the host's sysfs (USBCTL_SYSFS for
# tests). Installed by make install as
# .../bash-completion/completions/usbctl.
#
# Domain names are anybody's words: they are matched, never expanded
# (compgen -W would run a name like "$(cmd)").

# Adds each line of its input that starts with $cur to COMPREPLY (feed it
# with < <(...): in a pipeline it would run in a subshell).
_usbctl_add()
{
	local w
	while IFS= read -r w; do
		if [[ -n $w && $w == "$cur"* ]]; then
			COMPREPLY+=("$w")
		fi
	done
	return 0
}

# Each device's "VID:PID PORT", PORT its name in sysfs.
_usbctl_devices()
{
	local d n v p
	for d in "${USBCTL_SYSFS:-/sys/bus/usb/devices}"/*; do
		n=${d##*/}
		[[ $n =~ ^[0-9]+-[0-9.]+$ && -r $d/idVendor && -r $d/idProduct ]] ||
			continue
		read -r v < "$d/idVendor" && read -r p < "$d/idProduct" &&
			printf '%s:%s %s\n' "$v" "$p" "$n"
	done
}

# The device words: each VID:PID once, and VID:PID@PORT for those that
# need it (two devices with one VID:PID), or all when $cur has an @.
_usbctl_device_words()
{
	local -a devs
	local -A count=()
	local d id

	mapfile -t devs < <(_usbctl_devices)
	for d in "${devs[@]}"; do
		id=${d% *}
		count[$id]=$((${count[$id]:-0} + 1))
	done
	printf '%s\n' "${!count[@]}"
	for d in "${devs[@]}"; do
		id=${d% *}
		if [[ ${count[$id]} -gt 1 || $cur == *@* ]]; then
			printf '%s@%s\n' "$id" "${d#* }"
		fi
	done
}

_usbctl()
{
	local cur prev words cword w seen=
	local cmds="attach detach toggle status devices release watch"
	local opts="--socket --connect --domain --virsh --config --json
		--sysfs --input --help --version"

	COMPREPLY=()
	# VID:PID@PORT has a colon and an @, which readline splits words at.
	if declare -F _init_completion >/dev/null; then
		_init_completion -n :@ || return 0
	else
		cur=${COMP_WORDS[COMP_CWORD]}
		prev=${COMP_WORDS[COMP_CWORD-1]}
	fi

	case $prev in
	-d|--domain)
		_usbctl_add < <(LC_ALL=C virsh list --name 2>/dev/null)
		return 0 ;;
	-s|--socket|-C|--config|-V|--virsh)
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return 0 ;;
	--sysfs|--input)
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -d -- "$cur")
		return 0 ;;
	-c|--connect)
		return 0 ;;
	esac
	if [[ $cur == -* ]]; then
		_usbctl_add < <(printf '%s\n' $opts)
		return 0
	fi
	for w in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
		[[ " $cmds " == *" $w "* ]] && seen=$w
	done
	case $seen in
	status|devices|release|watch)
		;;
	"")
		_usbctl_add < <(printf '%s\n' $cmds)
		_usbctl_add < <(_usbctl_device_words) ;;
	*)
		_usbctl_add < <(_usbctl_device_words) ;;
	esac
	# Readline replaces only what follows the word's last break (a : or
	# an @ where they break words), so offer only that part.
	local brk=${COMP_WORDBREAKS//[^:@]/} pre
	if [[ -n $brk ]]; then
		pre=${cur%"${cur##*["$brk"]}"}
		COMPREPLY=("${COMPREPLY[@]#"$pre"}")
	fi
	return 0
}
complete -F _usbctl usbctl
