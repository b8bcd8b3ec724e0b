//! PC hardware facts shared by connectors of MDMs that manage Windows and
//! Linux machines (Intune, NinjaOne): the form factor a chassis type or an
//! OEM model name implies.

use crate::DeviceType;

/// The device type of a chassis as vendors report it: SMBIOS-style names
/// (`Notebook`, `Mini Tower`) or enum values (`laptop`, `allInOne`).
/// `None` for `unknown` and anything unrecognized.
pub fn chassis_device_type(chassis: &str) -> Option<DeviceType> {
    let c: String = chassis
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    Some(match c.as_str() {
        "laptop" | "notebook" | "portable" | "subnotebook" | "convertible" | "detachable"
        | "handheld" => DeviceType::Laptop,
        "desktop" | "lowprofiledesktop" | "minitower" | "tower" | "allinone" | "minipc"
        | "spacesaving" | "lunchbox" | "stickpc" | "sealedcasepc" | "workstation" => {
            DeviceType::Desktop
        }
        "tablet" => DeviceType::Tablet,
        "phone" | "mobile" | "smartphone" => DeviceType::Phone,
        "server" | "rackmountchassis" | "bladeenclosure" | "blade" | "multisystemchassis" => {
            DeviceType::Server
        }
        "virtual" | "virtualmachine" | "vm" => DeviceType::Virtual,
        "tv" | "television" => DeviceType::Tv,
        _ => return None,
    })
}

/// The device type an OEM's model name implies (`Latitude 7440`, `Surface
/// Pro 9`, `OptiPlex 7010`, `Virtual Machine`). `None` when the name says
/// nothing known: many model names (`20XW004GUS`) name no form factor.
pub fn model_device_type(model: &str) -> Option<DeviceType> {
    let m = model.trim().to_ascii_lowercase();
    // Virtual machines first: "VMware Virtual Platform" must not read as a
    // desktop; then the more specific lines of a brand before its family.
    const TABLE: &[(&str, DeviceType)] = &[
        ("virtual machine", DeviceType::Virtual),
        ("vmware", DeviceType::Virtual),
        ("virtualbox", DeviceType::Virtual),
        ("kvm", DeviceType::Virtual),
        ("hvm domu", DeviceType::Virtual),
        ("parallels", DeviceType::Virtual),
        ("cloud pc", DeviceType::Virtual),
        ("surface pro", DeviceType::Tablet),
        ("surface go", DeviceType::Tablet),
        ("surface laptop", DeviceType::Laptop),
        ("surface book", DeviceType::Laptop),
        ("surface studio", DeviceType::Desktop),
        ("thinkpad", DeviceType::Laptop),
        ("thinkbook", DeviceType::Laptop),
        ("thinkcentre", DeviceType::Desktop),
        ("thinkstation", DeviceType::Desktop),
        ("latitude", DeviceType::Laptop),
        ("xps", DeviceType::Laptop),
        ("inspiron", DeviceType::Laptop),
        ("vostro", DeviceType::Laptop),
        ("optiplex", DeviceType::Desktop),
        ("precision tower", DeviceType::Desktop),
        ("elitebook", DeviceType::Laptop),
        ("probook", DeviceType::Laptop),
        ("zbook", DeviceType::Laptop),
        ("elitedesk", DeviceType::Desktop),
        ("prodesk", DeviceType::Desktop),
        ("eliteone", DeviceType::Desktop),
        ("z2 tower", DeviceType::Desktop),
        ("poweredge", DeviceType::Server),
        ("proliant", DeviceType::Server),
        ("thinksystem", DeviceType::Server),
    ];
    TABLE
        .iter()
        .find(|(needle, _)| m.contains(needle))
        .map(|(_, t)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chassis_names() {
        assert_eq!(chassis_device_type("Notebook"), Some(DeviceType::Laptop));
        assert_eq!(chassis_device_type("Mini Tower"), Some(DeviceType::Desktop));
        assert_eq!(chassis_device_type("allInOne"), Some(DeviceType::Desktop));
        assert_eq!(chassis_device_type("tablet"), Some(DeviceType::Tablet));
        assert_eq!(
            chassis_device_type("Rack Mount Chassis"),
            Some(DeviceType::Server)
        );
        assert_eq!(chassis_device_type("unknown"), None);
        assert_eq!(chassis_device_type(""), None);
    }

    #[test]
    fn model_names() {
        let cases = [
            ("Latitude 7440", Some(DeviceType::Laptop)),
            ("Surface Pro 9", Some(DeviceType::Tablet)),
            ("Surface Laptop 5", Some(DeviceType::Laptop)),
            ("OptiPlex 7010", Some(DeviceType::Desktop)),
            ("HP EliteBook 840 G10", Some(DeviceType::Laptop)),
            ("ThinkCentre M70q Gen 4", Some(DeviceType::Desktop)),
            ("VMware Virtual Platform", Some(DeviceType::Virtual)),
            ("Virtual Machine", Some(DeviceType::Virtual)),
            ("20XW004GUS", None),
            ("", None),
        ];
        for (model, want) in cases {
            assert_eq!(model_device_type(model), want, "{model}");
        }
    }
}
