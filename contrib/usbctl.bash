# bash completion for usbctl: commands, options, domain names from
# "virsh list --name", devices from the host's sysfs (USBCTL_SYSFS for
# tests). Installed by make install as
# .../bash-completion/completions/usbctl.

_usbctl_devices()
{
	local d n v p
	for d in "${USBCTL_SYSFS:-/sys/bus/usb/devices}"/*; do
		n=${d##*/}
		[[ $n != usb* && $n != *:* && -r $d/idVendor && -r $d/idProduct ]] ||
			continue
		read -r v < "$d/idVendor" && read -r p < "$d/idProduct" &&
			printf '%s:%s\n' "$v" "$p"
	done
}

_usbctl()
{
	local cur prev words cword
	COMPREPLY=()
	_init_completion 2>/dev/null || {
		cur=${COMP_WORDS[COMP_CWORD]}
		prev=${COMP_WORDS[COMP_CWORD-1]}
	}
	local opts="--socket --connect --domain --virsh --config --json
		--sysfs --help --version"
	local cmds="attach detach toggle status devices"

	case $prev in
	-d|--domain)
		COMPREPLY=($(compgen -W "$(LC_ALL=C virsh list --name \
			2>/dev/null)" -- "$cur"))
		return ;;
	-s|--socket|-C|--config|-V|--virsh)
		COMPREPLY=($(compgen -f -- "$cur"))
		return ;;
	--sysfs)
		COMPREPLY=($(compgen -d -- "$cur"))
		return ;;
	-c|--connect)
		return ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
		return
	fi
	local w seen=
	for w in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
		[[ " $cmds " == *" $w "* ]] && seen=$w
	done
	case $seen in
	status|devices)
		;;
	"")
		COMPREPLY=($(compgen -W "$cmds $(_usbctl_devices)" -- "$cur")) ;;
	*)
		COMPREPLY=($(compgen -W "$(_usbctl_devices)" -- "$cur")) ;;
	esac
}
complete -F _usbctl usbctl
