<#
  detach.ps1: give the keyboard and mouse back to the host.

  Run inside the Windows guest. For each device listed below it writes one
  line, "VMNAME detach VID:PID", to the guest's serial port; on the host
  that port is wired to usbserver, which detaches the device from this VM
  so the host gets it back. Nothing is read back from the port: the
  daemon does not answer.

  Setup:
    - Set $VmName to this VM's libvirt domain name (as in "virsh list").
    - Set $Devices to the VID:PID of each device to hand back; on the host,
      "lsusb" shows them as "ID 046d:c52b".
    - Both can also be given on the command line, e.g.
        detach.ps1 -VmName win10 -Devices 046d:c52b,046d:c077
    - The port must run at the same speed as below. In Device Manager,
      Ports (COM & LPT) > COM1 > Properties > Port Settings, set
      "Bits per second" to 115200.

  Heartbeat (optional):
        detach.ps1 -VmName win10 -Alive 30
    runs until stopped and writes "win10 alive 30" every 10 seconds: a
    lease. Should Windows hang, so that 30 seconds pass with no line
    from it, usbserver gives the devices back by itself. Run it at logon
    with Task Scheduler. It opens the port only to write each line, so
    that a detach in between finds the port free.
#>
param(
    [string]   $VmName   = "win10",
    [string[]] $Devices  = @("046d:c52b", "046d:c077"),
    [string]   $PortName = "COM1",
    [int]      $BaudRate = 115200,
    [int]      $Alive    = 0
)

$ErrorActionPreference = "Stop"

function Fail([string] $Message) {
    [Console]::Error.WriteLine("detach.ps1: $Message")
    exit 1
}

# "-File" passes "a,b" as one string: split it into devices.
$Devices = @($Devices | ForEach-Object { $_ -split "," } |
             ForEach-Object { $_.Trim() } | Where-Object { $_ -ne "" })

# Check everything before touching the port. -cmatch and \z keep the test
# exact: no case folding, and no final newline slipping past "$".
if ($VmName.Length -gt 128 -or
    $VmName -cnotmatch '^[A-Za-z0-9._+][A-Za-z0-9._+-]*\z') {
    Fail "invalid VM name '$VmName' (letters, digits and ._+- only, not starting with -)"
}
if ($Alive -lt 0 -or $Alive -gt 3600) {
    Fail "invalid lease $Alive (seconds, 1 to 3600)"
}
if ($Alive -eq 0 -and $Devices.Count -eq 0) {
    Fail "no devices given"
}
foreach ($device in $Devices) {
    if ($device -cnotmatch '^[0-9A-Fa-f]{4}:[0-9A-Fa-f]{4}\z') {
        Fail "invalid device '$device' (expected VID:PID, four hex digits each)"
    }
}

# Writes the lines to the port, opened for them alone. A port that the
# heartbeat holds for a moment is tried again for 2 seconds.
function Send([string[]] $Lines) {
    $port = New-Object System.IO.Ports.SerialPort $PortName, $BaudRate,
        ([System.IO.Ports.Parity]::None), 8, ([System.IO.Ports.StopBits]::One)
    $port.WriteTimeout = 2000
    $deadline = (Get-Date).AddSeconds(2)
    try {
        while ($true) {
            try {
                $port.Open()
                break
            }
            catch [System.UnauthorizedAccessException] {
                if ((Get-Date) -ge $deadline) { throw }
                Start-Sleep -Milliseconds 50
            }
        }
        foreach ($line in $Lines) {
            $port.Write("$line`n")
        }
        # Let the last bytes leave before the port is closed.
        while ($port.BytesToWrite -gt 0 -and (Get-Date) -lt $deadline) {
            Start-Sleep -Milliseconds 20
        }
    }
    catch {
        Fail "cannot write to ${PortName}: $($_.Exception.Message)"
    }
    finally {
        $port.Close()
    }
}

if ($Alive -gt 0) {
    # Three beats a lease: one late line does not let it lapse.
    $beat = [Math]::Max(1, [Math]::Floor($Alive / 3))
    try {
        while ($true) {
            Send @("$VmName alive $Alive")
            Start-Sleep -Seconds $beat
        }
    }
    finally {
        # Stopped (Ctrl+C, the task ended): the lease ends too.
        Send @("$VmName alive 0")
    }
}
Send @($Devices | ForEach-Object { "$VmName detach $_" })
