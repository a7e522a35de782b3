"""Supply current per state, each with its source. Data only: the one home
of these figures (docs/power.md prints them; tools/power/model.py uses them).

Every row: the figure in mA, where it comes from (document, version,
table/page) and `assumption` - True when no datasheet figure could be
found and the value is a stated choice, not a measurement. Ranges are kept
(lo, hi) where the source gives one, with the value the model uses.

Model (tools/power/model.py): the battery current is the sum of the rails'
currents (linear regulators: each rail's load current is drawn from the
cell; regulator quiescent current and efficiency are not modelled):
- ESP32 = CPU rail + radio add-on. The CPU rail is the datasheet's
  "modem-sleep, CPU on" figure (radio off) at the clock rate; the radio
  add-on is the radio's measured whole-chip current minus the CPU-idle
  baseline it was measured over (the same table's lower bound at 160 MHz).
- sensor = PPG core + ECG front end + LED drive (amplitude x pulse width x
  pulses per second, from the chip's registers), or its shutdown current.
"""

# Sources (as retrieved with the project's `search` tool; URLs are where the
# page was read).
ESP32_DS = ("ESP32 Series Datasheet v3.5 (Espressif), section 3.7 'RTC and Low-Power "
            "Management', Table 6 'Power Consumption by Power Modes', p. 30 "
            "(read at 38.142.81.21:8001/manual/espressif/esp32-d0wd-v3/data-sheet-english/page-30)")
ESP32_DS_80 = ("ESP32 Series Datasheet, Table 6, 80 MHz row (continued on p. 31, which was not "
               "retrieved); figure as reproduced in the Deneyap Kart 1A 'Power Consumption (ESP32)' "
               "page (docs.deneyapkart.org) - secondary source")
WROOM_DS = ("ESP32-WROOM-32 Datasheet (Espressif module datasheet as published with Adafruit "
            "product 3320), section 3.4, Table 4 'Power Consumption by Power Modes', p. 12; "
            "version not shown on the retrieved page")
RF_DS = ("Espressif ESP32 module datasheet (ESP32-PICO series), section 3.4 'Current Consumption "
         "Characteristics', Table 6 'Current Consumption Depending on RF Modes', p. 10 "
         "(3.3 V, 25 C, at the RF port, TX at 50 % duty cycle; RX with peripherals disabled and "
         "the CPU idle; read at 38.142.81.21:8001/manual/espressif-systems/esp32picozero/"
         "user-s-manual-english/page-10); version not shown on the retrieved page")
IDF_MODEM = ("ESP-IDF Programming Guide, 'Introduction to Low Power Mode in Wi-Fi Scenarios', "
             "ESP32 Modem-sleep table (docs/en/api-guides/sleep-current/esp32_modem_sleep.inc, "
             "espressif/esp-idf commit 1929b27): 160 MHz, DFS off, station connected")
MAX86150_DS = "MAX86150 data sheet 19-8402 Rev 2 (12/18), Maxim Integrated, p. 1 'Benefits and Features'"
MAX30102_DS = "MAX30102 data sheet 19-7740 Rev 1 (10/18), Maxim Integrated, p. 1 'Benefits and Features'"
MAX30102_EC = ("MAX30102 data sheet 19-7740 Rev 1 (10/18), Maxim Integrated, 'Electrical "
               "Characteristics' table, p. 2, POWER SUPPLY rows (VDD = 1.8 V, VLED+ = 5.0 V, typical "
               "at TA = +25 C); read as a Markdown transcription of that data sheet in a public "
               "GitHub repository (code index file 15530773931, revision history: Rev 1, 10/18), "
               "whose table shifts the typical column into MIN (its shutdown row reads 0.7 uA "
               "there, which p. 1 gives as typical)")

ESP32_CPU = {
    # mA while awake with the radio off ("Modem-sleep, the CPU is powered on"),
    # dual-core ESP32: the range's upper end, so the CPU's work (not timed by
    # the simulation: Python takes no virtual time) is not left out
    20: {"ma": 31.0, "range": None, "source": ESP32_DS_80, "assumption": True,
         "note": "no figure for 20 MHz: priced as 80 MHz (an upper bound)"},
    40: {"ma": 31.0, "range": None, "source": ESP32_DS_80, "assumption": True,
         "note": "no figure for 40 MHz: priced as 80 MHz (an upper bound)"},
    80: {"ma": 31.0, "range": (20.0, 31.0), "source": ESP32_DS_80, "assumption": False,
         "note": "upper end of the range"},
    160: {"ma": 44.0, "range": (27.0, 44.0), "source": ESP32_DS, "assumption": False,
          "note": "upper end of the range"},
    240: {"ma": 68.0, "range": (30.0, 68.0), "source": ESP32_DS, "assumption": False,
          "note": "upper end of the range"},
}
ESP32_LIGHT_SLEEP = {"ma": 0.8, "source": WROOM_DS, "assumption": False,
                     "note": "Light-sleep, whole chip"}
ESP32_DEEP_SLEEP = {"ma": 0.010, "source": WROOM_DS, "assumption": False,
                    "note": "Deep-sleep, RTC timer + RTC memory (10 uA)"}
# the CPU-idle baseline the radio figures were measured over: Table 6's lower
# end at 160 MHz (27 mA; ESP-IDF's measurement below has 27.18 mA between beacons)
CPU_IDLE_BASELINE_MA = 27.0

# The CPU's work per sample. Python takes no virtual time in the simulation,
# so the time the CPU is awake to process what it read is priced here:
# samples read x this cost, at the clock rate of the read, moved out of light
# sleep (tools/power/model.py). Per FIFO sample (ECG + IR + red at 200 sps):
# the node's sampler + detection as `make bench` measures it on the 32-bit
# wasm VM, times the ESP32 factor.
WORK_WASM_US = 20.2
WORK_SOURCE = ("make bench: detect.node_us_per_fifo_sample_wasm, 18.5-22.4 us over nine runs on a "
               "2-core host, median 20.2 used, 2026-12-06, each block of drains timed as one interval "
               "(the wasm VM's ticks_us moves in whole ms; with per-drain intervals single runs swung "
               "from 14.6 to 38.7 us, median 20.5 on 2026-12-05); firmware.sampler + firmware.detect "
               "per FIFO sample, tools/bench/node_vm.py; before the perf20 hot-path work: median 26.6. "
               "The unix port's 4.3-6.3 us x 110-220 gives the same ESP32 range")
# ESP32 time = wasm time x 30-60 at 240 MHz (../shared/notes/micropython-runtimes.md:
# pystones, +-2x); x (240 / MHz) at a lower clock. The model uses the middle.
ESP32_FACTOR = {"lo": 30.0, "mid": 45.0, "hi": 60.0}


def work_us_per_sample(mhz, factor="mid"):
    """ESP32 CPU time (us) to process one FIFO sample at `mhz`."""
    return WORK_WASM_US * ESP32_FACTOR[factor] * 240.0 / mhz


# Wi-Fi: the stated PHY rate for airtime, and the figures at that rate
PHY = "802.11g OFDM 54 Mbit/s, 20 MHz"
PHY_MBIT_S = 54.0
WIFI_TX = {"ma": 181.0, "source": RF_DS, "assumption": False,
           "note": "TX 802.11g 20 MHz 54 Mbps, average (peak 258 mA)"}
WIFI_RX = {"ma": 110.0, "source": RF_DS, "assumption": False,
           "note": "RX 802.11b/g/n 20 MHz, average"}
WIFI_CONNECT = {"ma": 110.0, "source": RF_DS, "assumption": True,
                "note": "no datasheet figure for scan / association / DHCP: the radio is taken "
                        "to listen (RX) for the whole attempt"}
WIFI_ON_IDLE = {"ma": 110.0, "source": RF_DS, "assumption": True,
                "note": "radio started, no connection asked: taken as listening (RX)"}
WIFI_PS_NONE = {"ma": 110.0, "source": RF_DS, "assumption": False,
                "note": "connected, power save off (WIFI_PS_NONE, WLAN.PM_NONE): the receiver "
                        "listens all the time"}
WIFI_PS_MIN = {"ma": 31.12, "min_ma": 27.18, "source": IDF_MODEM + ", DTIM 1: average 31.12 mA, "
               "minimum 27.18 mA", "assumption": False,
               "note": "connected, WIFI_PS_MIN_MODEM (WLAN.PM_PERFORMANCE, ESP-IDF's default, "
                       "which MicroPython's port keeps): wakes for every DTIM beacon; the radio's "
                       "share is average - minimum = 3.94 mA"}
WIFI_PS_MAX = {"ma": 28.81, "min_ma": 27.77, "source": IDF_MODEM + ", DTIM 3: average 28.81 mA, "
               "minimum 27.77 mA", "assumption": True,
               "note": "connected, WIFI_PS_MAX_MODEM (WLAN.PM_POWERSAVE, listen interval 3): taken "
                       "as the DTIM 3 measurement; radio share 1.04 mA"}

# The sensor chips
SENSOR = {
    "max86150": {
        "shutdown": {"ma": 0.0007, "source": MAX86150_DS, "assumption": False,
                     "note": "ultra-low shutdown current 0.7 uA typical (no maximum found)"},
        # The Electrical Characteristics table (supply current per mode) was not
        # in any retrieved copy: the indexed copies (pdf.elecfans.com, a Scribd
        # mirror) return p. 1 only; no transcription is in the code index.
        "ppg": {"ma": 1.0, "source": MAX86150_DS, "assumption": True,
                "note": "PPG core supply (VDD) not found in any retrieved page (Electrical "
                        "Characteristics table not retrievable): 1 mA placeholder, high on purpose"},
        "ecg": {"ma": 1.0, "source": MAX86150_DS, "assumption": True,
                "note": "ECG front end supply not found in any retrieved page (Electrical "
                        "Characteristics table not retrievable): 1 mA placeholder, high on purpose"},
    },
    "max30102": {
        # VDD is the 1.8 V rail; by the model's convention (linear regulators)
        # its load current is the current drawn from the cell, not scaled by
        # voltage. The LEDs run from VLED+ and are priced separately (LED_SOURCE).
        "shutdown": {"ma": 0.010, "range": (0.0007, 0.010), "source": MAX30102_EC,
                     "assumption": False,
                     "note": "ISHDN, TA = +25 C, MODE = 0x80: 0.7 uA typical, 10 uA max (upper "
                             "end used); drawn from the cell as is (linear regulator)"},
        "ppg": {"ma": 1.2, "range": (0.6, 1.2), "source": MAX30102_EC, "assumption": False,
                "note": "IDD on the 1.8 V VDD rail, SpO2 and HR mode (IR only mode the same), "
                        "LED pulse width 215 us, 50 sps: 600 uA typical, 1200 uA max (upper end "
                        "used, as for the ESP32 rows); stated at that condition only, the node "
                        "runs other settings (lib/max30102.py: 100 sps, 411 us by default); "
                        "drawn from the cell as is (linear regulator); LEDs excluded (VLED+)"},
    },
}
LED_SOURCE = ("average LED current = pulse amplitude x pulse width x pulses per second, per lit "
              "LED, from the chip's registers: LEDx_PA x step (MAX86150 LED_RANGE 0.2/0.4 mA, "
              "MAX30102 0.2 mA), PPG_LED_PW / LED_PW (MAX86150 50-400 us, MAX30102 69-411 us), "
              "the internal sample rate before averaging (x2 on MAX86150 PPG_SR codes 11-15); "
              "register meanings as lib/max86150.py and lib/max30102.py use them. Checked for the "
              "MAX30102 against data sheet 19-7740 Rev 1: Table 8 (LEDx_PA, 0.2 mA per step typical, "
              "0xFF = 51 mA; actual current varies widely with trim), Table 7 (LED_PW 69-411 us), "
              "Table 6 (one IR and one red pulse per sample in SpO2 mode), LED driver section (0-50 "
              "mA from VLED+). MAX86150: not re-checked, its register pages were not retrieved")


def radio_addon_ma(row):
    """A radio row's share on top of the CPU rail."""
    if "min_ma" in row:
        return row["ma"] - row["min_ma"]
    return row["ma"] - CPU_IDLE_BASELINE_MA


def rows():
    """(state, mA used, source, assumption, note) for docs/power.md."""
    out = []
    for mhz in (80, 160, 240, 20, 40):
        r = ESP32_CPU[mhz]
        rng = " (range %g-%g)" % r["range"] if r["range"] else ""
        out.append(("ESP32 CPU active, %d MHz, radio off" % mhz, r["ma"], r["source"],
                    r["assumption"], r["note"] + rng))
    for name, r in (("ESP32 light sleep", ESP32_LIGHT_SLEEP), ("ESP32 deep sleep", ESP32_DEEP_SLEEP),
                    ("Wi-Fi TX (%s)" % PHY, WIFI_TX), ("Wi-Fi RX (%s)" % PHY, WIFI_RX),
                    ("Wi-Fi connect / association", WIFI_CONNECT),
                    ("Wi-Fi on, not connecting", WIFI_ON_IDLE),
                    ("Wi-Fi connected, power save off", WIFI_PS_NONE),
                    ("Wi-Fi connected, modem sleep (min)", WIFI_PS_MIN),
                    ("Wi-Fi connected, modem sleep (max)", WIFI_PS_MAX)):
        out.append((name, r["ma"], r["source"], r["assumption"], r["note"]))
    for part, states in SENSOR.items():
        for st, r in states.items():
            out.append(("%s %s" % (part.upper(), st), r["ma"], r["source"], r["assumption"],
                        r["note"]))
    return out
