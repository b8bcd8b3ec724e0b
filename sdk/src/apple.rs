//! Apple hardware facts shared by connectors of Apple-centric MDMs (Iru,
//! Jamf): the device type a marketing model name or model identifier implies.

use crate::DeviceType;

/// The device type of an Apple model, from its marketing name
/// (`MacBook Air (M2, 2022)`, `iPad (8th generation)`) or its model
/// identifier (`MacBookPro18,3`, `iPhone15,2`, `AppleTV11,1`). `None` when the
/// name says nothing known (a bare `Mac14,2` identifier names no form factor).
pub fn device_type(model: &str) -> Option<DeviceType> {
    let m = model.trim().to_ascii_lowercase();
    // Order matters: "macbook" before "mac", "ipad" before "ipod".
    const TABLE: &[(&str, DeviceType)] = &[
        ("macbook", DeviceType::Laptop),
        ("powerbook", DeviceType::Laptop),
        ("imac", DeviceType::Desktop),
        ("mac mini", DeviceType::Desktop),
        ("macmini", DeviceType::Desktop),
        ("mac studio", DeviceType::Desktop),
        ("mac pro", DeviceType::Desktop),
        ("macpro", DeviceType::Desktop),
        ("xserve", DeviceType::Server),
        ("iphone", DeviceType::Phone),
        ("ipad", DeviceType::Tablet),
        ("ipod", DeviceType::Other),
        ("apple tv", DeviceType::Tv),
        ("appletv", DeviceType::Tv),
        ("vision pro", DeviceType::Other),
        ("realitydevice", DeviceType::Other),
        ("virtualmac", DeviceType::Virtual),
        ("vmware", DeviceType::Virtual),
    ];
    TABLE
        .iter()
        .find(|(prefix, _)| m.starts_with(prefix))
        .map(|(_, t)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_identifiers() {
        let cases = [
            ("MacBook Air (M2, 2022)", Some(DeviceType::Laptop)),
            ("MacBookPro18,3", Some(DeviceType::Laptop)),
            ("iMac (24-inch, M1, 2021)", Some(DeviceType::Desktop)),
            ("Mac mini (M2, 2023)", Some(DeviceType::Desktop)),
            ("Mac Studio (2022)", Some(DeviceType::Desktop)),
            ("Mac Pro (2019)", Some(DeviceType::Desktop)),
            ("iPhone 15 Pro", Some(DeviceType::Phone)),
            ("iPad (8th generation) (Wi-Fi)", Some(DeviceType::Tablet)),
            ("Apple TV 4K (3rd generation)", Some(DeviceType::Tv)),
            ("AppleTV11,1", Some(DeviceType::Tv)),
            ("VirtualMac2,1", Some(DeviceType::Virtual)),
            ("Mac14,2", None),
            ("", None),
        ];
        for (model, want) in cases {
            assert_eq!(device_type(model), want, "{model}");
        }
    }
}
