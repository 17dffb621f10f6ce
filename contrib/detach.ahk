; detach.ahk: Ctrl+PrintScreen in the Windows guest runs detach.ps1, which
; asks usbserver on the host to take the keyboard and mouse back.
;
; AutoHotkey v1 syntax. Set DetachScript to where detach.ps1 lives, then
; put a shortcut to this file in shell:startup to load it at logon.
;
; AutoHotkey v2 equivalent:
;   DetachScript := "C:\Users\User\Documents\usbserver\detach.ps1"
;   ^PrintScreen::Run('powershell.exe -NoProfile -ExecutionPolicy Bypass -WindowStyle Hidden -File "' DetachScript '"', , "Hide")

#NoEnv
#SingleInstance Force

DetachScript := "C:\Users\User\Documents\usbserver\detach.ps1"
return  ; end of the auto-execute section

^PrintScreen::
    Run, powershell.exe -NoProfile -ExecutionPolicy Bypass -WindowStyle Hidden -File "%DetachScript%", , Hide
return
