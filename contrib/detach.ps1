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
#>
param(
    [string]   $VmName   = "win10",
    [string[]] $Devices  = @("046d:c52b", "046d:c077"),
    [string]   $PortName = "COM1",
    [int]      $BaudRate = 115200
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
if ($Devices.Count -eq 0) {
    Fail "no devices given"
}
foreach ($device in $Devices) {
    if ($device -cnotmatch '^[0-9A-Fa-f]{4}:[0-9A-Fa-f]{4}\z') {
        Fail "invalid device '$device' (expected VID:PID, four hex digits each)"
    }
}

$port = New-Object System.IO.Ports.SerialPort $PortName, $BaudRate,
    ([System.IO.Ports.Parity]::None), 8, ([System.IO.Ports.StopBits]::One)
$port.WriteTimeout = 2000
try {
    $port.Open()
    foreach ($device in $Devices) {
        $port.Write("$VmName detach $device`n")
    }
    # Let the last bytes leave before the port is closed.
    $deadline = (Get-Date).AddSeconds(2)
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
