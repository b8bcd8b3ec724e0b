//! A seeded synthetic fleet, vendor-neutral: people, physical devices and
//! installed software. Each simulator renders it in its vendor's format.
//! The same seed always gives the same fleet: [`Fleet::apple`] for Apple-only
//! vendors, [`Fleet::mixed`] for cross-platform ones.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

/// Form factor and OS family of a synthetic device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A MacBook.
    MacLaptop,
    /// An iMac, Mac mini, Mac Studio or Mac Pro.
    MacDesktop,
    /// An iPhone.
    IPhone,
    /// An iPad.
    IPad,
    /// An Apple TV.
    AppleTv,
    /// A Windows notebook or 2-in-1.
    WindowsLaptop,
    /// A Windows desktop or mini PC.
    WindowsDesktop,
    /// An Android phone.
    AndroidPhone,
}

impl Kind {
    /// A Mac (laptop or desktop).
    pub fn is_mac(self) -> bool {
        matches!(self, Kind::MacLaptop | Kind::MacDesktop)
    }

    /// Runs Windows.
    pub fn is_windows(self) -> bool {
        matches!(self, Kind::WindowsLaptop | Kind::WindowsDesktop)
    }

    /// Made by Apple.
    pub fn is_apple(self) -> bool {
        !self.is_windows() && self != Kind::AndroidPhone
    }
}

/// A person in the directory.
#[derive(Debug, Clone)]
pub struct Person {
    /// Stable UUID.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Work email (unique).
    pub email: String,
    /// Department.
    pub department: String,
    /// Job title.
    pub job_title: String,
    /// Still employed.
    pub active: bool,
}

/// One installed application.
#[derive(Debug, Clone, Copy)]
pub struct Software {
    /// Display name.
    pub name: &'static str,
    /// Bundle id.
    pub bundle_id: &'static str,
    /// Version string.
    pub version: &'static str,
    /// Who made it.
    pub vendor: &'static str,
}

/// A physical device.
#[derive(Debug, Clone)]
pub struct Machine {
    /// Stable UUID (the vendor's device id).
    pub id: String,
    /// Form factor.
    pub kind: Kind,
    /// Device name.
    pub name: String,
    /// Marketing model name.
    pub model: &'static str,
    /// Model identifier: what the firmware reports (Apple's `Mac14,2`, a
    /// Lenovo machine type, a Samsung `SM-` code, or the model name).
    pub model_identifier: &'static str,
    /// Manufacturer as the device reports it (`Apple`, `Dell Inc.`, `LENOVO`).
    pub manufacturer: &'static str,
    /// Serial number; a few devices have none.
    pub serial: Option<String>,
    /// Hardware UDID.
    pub udid: String,
    /// OS version and build.
    pub os: (&'static str, &'static str),
    /// Assigned person (index into [`Fleet::people`]); `None` = unassigned.
    pub owner: Option<usize>,
    /// Asset tag; often missing.
    pub asset_tag: Option<String>,
    /// Wi-Fi/Ethernet MAC.
    pub mac: String,
    /// Memory in GiB.
    pub memory_gb: u32,
    /// Storage in GB.
    pub storage_gb: u32,
    /// Processor name.
    pub processor: &'static str,
    /// Disk encryption on.
    pub encrypted: bool,
    /// Supervised.
    pub supervised: bool,
    /// Group (index into [`Fleet::groups`]).
    pub group: usize,
    /// Unix seconds of the last check-in; `None` = never checked in.
    pub last_check_in: Option<i64>,
    /// Unix seconds of first and last enrollment.
    pub enrolled: (i64, i64),
    /// Installed software (indexes for [`software`]; Apple devices only
    /// draw from [`CATALOG`]).
    pub apps: Vec<usize>,
    /// Tags.
    pub tags: Vec<&'static str>,
    /// Personally owned (BYOD) rather than company owned.
    pub personal: bool,
}

/// The whole synthetic estate.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// Devices, in enrollment order.
    pub machines: Vec<Machine>,
    /// People.
    pub people: Vec<Person>,
    /// Group names (blueprints, sites).
    pub groups: Vec<&'static str>,
}

/// Software every generated Apple device draws from.
pub const CATALOG: &[Software] = &[
    Software {
        name: "Google Chrome",
        bundle_id: "com.google.Chrome",
        version: "126.0.6478.183",
        vendor: "Google LLC",
    },
    Software {
        name: "Slack",
        bundle_id: "com.tinyspeck.slackmacgap",
        version: "4.39.95",
        vendor: "Slack Technologies",
    },
    Software {
        name: "zoom.us",
        bundle_id: "us.zoom.xos",
        version: "6.1.5",
        vendor: "Zoom Video Communications",
    },
    Software {
        name: "1Password",
        bundle_id: "com.1password.1password",
        version: "8.10.36",
        vendor: "AgileBits",
    },
    Software {
        name: "Microsoft Word",
        bundle_id: "com.microsoft.Word",
        version: "16.87",
        vendor: "Microsoft Corporation",
    },
    Software {
        name: "Microsoft Excel",
        bundle_id: "com.microsoft.Excel",
        version: "16.87",
        vendor: "Microsoft Corporation",
    },
    Software {
        name: "Visual Studio Code",
        bundle_id: "com.microsoft.VSCode",
        version: "1.91.1",
        vendor: "Microsoft Corporation",
    },
    Software {
        name: "Docker",
        bundle_id: "com.docker.docker",
        version: "4.32.0",
        vendor: "Docker Inc",
    },
    Software {
        name: "Figma",
        bundle_id: "com.figma.Desktop",
        version: "124.2.11",
        vendor: "Figma, Inc.",
    },
    Software {
        name: "Notion",
        bundle_id: "notion.id",
        version: "3.11.1",
        vendor: "Notion Labs",
    },
    Software {
        name: "Safari",
        bundle_id: "com.apple.Safari",
        version: "17.5",
        vendor: "Apple",
    },
    Software {
        name: "Keynote",
        bundle_id: "com.apple.iWork.Keynote",
        version: "14.1",
        vendor: "Apple",
    },
];

/// Software Windows devices draw from (`bundle_id`: the winget id). Chrome
/// appears in two versions, as in a real estate mid-rollout.
pub const WINDOWS_SOFTWARE: &[Software] = &[
    sw(
        "Google Chrome",
        "Google.Chrome",
        "126.0.6478.183",
        "Google LLC",
    ),
    sw(
        "Google Chrome",
        "Google.Chrome",
        "125.0.6422.142",
        "Google LLC",
    ),
    sw(
        "Microsoft Edge",
        "Microsoft.Edge",
        "126.0.2592.113",
        "Microsoft Corporation",
    ),
    sw(
        "Microsoft Teams",
        "Microsoft.Teams",
        "24165.1410.2974.6689",
        "Microsoft Corporation",
    ),
    sw(
        "Microsoft 365 Apps for enterprise - en-us",
        "Microsoft.Office",
        "16.0.17726.20160",
        "Microsoft Corporation",
    ),
    sw(
        "Zoom Workplace (64-bit)",
        "Zoom.Zoom",
        "6.1.43316",
        "Zoom Video Communications, Inc.",
    ),
    sw(
        "Slack",
        "SlackTechnologies.Slack",
        "4.39.95",
        "Slack Technologies Inc.",
    ),
    sw("7-Zip 23.01 (x64)", "7zip.7zip", "23.01", "Igor Pavlov"),
    sw(
        "Notepad++ (64-bit x64)",
        "Notepad++.Notepad++",
        "8.6.9",
        "Notepad++ Team",
    ),
    sw(
        "Adobe Acrobat (64-bit)",
        "Adobe.Acrobat.Reader.64-bit",
        "24.002.20933",
        "Adobe",
    ),
    sw(
        "Microsoft Visual Studio Code",
        "Microsoft.VisualStudioCode",
        "1.91.1",
        "Microsoft Corporation",
    ),
    sw("Git", "Git.Git", "2.45.2", "The Git Development Community"),
    sw(
        "CrowdStrike Windows Sensor",
        "CrowdStrike.FalconSensor",
        "7.16.18605.0",
        "CrowdStrike, Inc.",
    ),
];

/// Software Android devices draw from (`bundle_id`: the package name).
pub const ANDROID_SOFTWARE: &[Software] = &[
    sw(
        "Microsoft Authenticator",
        "com.azure.authenticator",
        "6.2406.4116",
        "Microsoft Corporation",
    ),
    sw(
        "Intune Company Portal",
        "com.microsoft.windowsintune.companyportal",
        "5.0.6310.0",
        "Microsoft Corporation",
    ),
    sw(
        "Microsoft Outlook",
        "com.microsoft.office.outlook",
        "4.2425.1",
        "Microsoft Corporation",
    ),
    sw(
        "Microsoft Teams",
        "com.microsoft.teams",
        "1416/1.0.0.2024122302",
        "Microsoft Corporation",
    ),
    sw(
        "Slack",
        "com.Slack",
        "24.07.10.0",
        "Slack Technologies Inc.",
    ),
    sw(
        "Zoom",
        "us.zoom.videomeetings",
        "6.1.1.22710",
        "Zoom Video Communications, Inc.",
    ),
    sw(
        "Chrome",
        "com.android.chrome",
        "126.0.6478.134",
        "Google LLC",
    ),
];

const fn sw(
    name: &'static str,
    bundle_id: &'static str,
    version: &'static str,
    vendor: &'static str,
) -> Software {
    Software {
        name,
        bundle_id,
        version,
        vendor,
    }
}

/// The catalogs in index order: [`Machine::apps`] indexes run through them.
const CATALOGS: [&[Software]; 3] = [CATALOG, WINDOWS_SOFTWARE, ANDROID_SOFTWARE];

/// Every software index, across all catalogs.
pub fn software_count() -> usize {
    CATALOGS.iter().map(|c| c.len()).sum()
}

/// The software at a [`Machine::apps`] index.
pub fn software(index: usize) -> &'static Software {
    let mut i = index;
    for catalog in CATALOGS {
        match catalog.get(i) {
            Some(s) => return s,
            None => i -= catalog.len(),
        }
    }
    panic!("software index {index} out of range")
}

/// The index range of the catalog a device of `kind` draws from.
fn catalog_range(kind: Kind) -> std::ops::Range<usize> {
    let which = if kind.is_windows() {
        1
    } else if kind == Kind::AndroidPhone {
        2
    } else {
        0
    };
    let start: usize = CATALOGS[..which].iter().map(|c| c.len()).sum();
    start..start + CATALOGS[which].len()
}

const FIRST: &[&str] = &[
    "Dana", "Alex", "Sam", "Priya", "Chen", "Maria", "Jonas", "Aisha", "Lukas", "Emma", "Noah",
    "Yuki", "Omar", "Sofia", "Mateo", "Lena", "Ravi", "Zoe", "Felix", "Nadia",
];
const LAST: &[&str] = &[
    "Lee", "Garcia", "Nguyen", "Smith", "Kumar", "Rossi", "Schmidt", "Okafor", "Tanaka", "Dubois",
    "Silva", "Novak", "Cohen", "Larsen", "Moreau", "Haddad",
];
const DEPARTMENTS: &[(&str, &str)] = &[
    ("Engineering", "Software Engineer"),
    ("Sales", "Account Executive"),
    ("Marketing", "Marketing Manager"),
    ("Finance", "Accountant"),
    ("Support", "Support Specialist"),
    ("IT", "IT Administrator"),
];
const GROUPS: &[&str] = &[
    "Engineering",
    "Sales",
    "Shared iPads",
    "Executives",
    "Kiosks",
    "Conference Rooms",
];

/// A hardware model devices are drawn from.
struct Model {
    kind: Kind,
    manufacturer: &'static str,
    name: &'static str,
    identifier: &'static str,
    processor: &'static str,
}

const fn model(
    kind: Kind,
    manufacturer: &'static str,
    name: &'static str,
    identifier: &'static str,
    processor: &'static str,
) -> Model {
    Model {
        kind,
        manufacturer,
        name,
        identifier,
        processor,
    }
}

/// Apple models first, in their original order: [`Fleet::apple`] draws
/// from the entries of one kind, so adding other kinds leaves it unchanged.
const MODELS: &[Model] = &[
    model(
        Kind::MacLaptop,
        "Apple",
        "MacBook Air (M2, 2022)",
        "Mac14,2",
        "Apple M2",
    ),
    model(
        Kind::MacLaptop,
        "Apple",
        "MacBook Pro (14-inch, M3 Pro, 2023)",
        "Mac15,6",
        "Apple M3 Pro",
    ),
    model(
        Kind::MacLaptop,
        "Apple",
        "MacBook Pro (16-inch, 2019)",
        "MacBookPro16,1",
        "6-Core Intel Core i7",
    ),
    model(
        Kind::MacDesktop,
        "Apple",
        "iMac (24-inch, M1, 2021)",
        "iMac21,1",
        "Apple M1",
    ),
    model(
        Kind::MacDesktop,
        "Apple",
        "Mac mini (M2, 2023)",
        "Mac14,3",
        "Apple M2",
    ),
    model(
        Kind::MacDesktop,
        "Apple",
        "Mac Studio (2022)",
        "Mac13,1",
        "Apple M1 Max",
    ),
    model(Kind::IPhone, "Apple", "iPhone 15 Pro", "iPhone16,1", ""),
    model(Kind::IPhone, "Apple", "iPhone 13", "iPhone14,5", ""),
    model(
        Kind::IPad,
        "Apple",
        "iPad (8th generation) (Wi-Fi)",
        "iPad11,6",
        "",
    ),
    model(
        Kind::IPad,
        "Apple",
        "iPad Pro (11-inch) (4th generation)",
        "iPad14,3",
        "",
    ),
    model(
        Kind::AppleTv,
        "Apple",
        "Apple TV 4K (3rd generation)",
        "AppleTV14,1",
        "",
    ),
    model(
        Kind::WindowsLaptop,
        "Dell Inc.",
        "Latitude 7440",
        "Latitude 7440",
        "13th Gen Intel(R) Core(TM) i7-1365U",
    ),
    model(
        Kind::WindowsLaptop,
        "HP",
        "EliteBook 840 G10",
        "HP EliteBook 840 G10 Notebook PC",
        "13th Gen Intel(R) Core(TM) i5-1345U",
    ),
    // Lenovo firmware reports the machine type, not the name.
    model(
        Kind::WindowsLaptop,
        "LENOVO",
        "ThinkPad T14 Gen 4",
        "21HD003YUS",
        "13th Gen Intel(R) Core(TM) i7-1355U",
    ),
    model(
        Kind::WindowsLaptop,
        "Microsoft Corporation",
        "Surface Laptop 5",
        "Surface Laptop 5",
        "12th Gen Intel(R) Core(TM) i7-1265U",
    ),
    model(
        Kind::WindowsLaptop,
        "Microsoft Corporation",
        "Surface Pro 9",
        "Surface Pro 9",
        "12th Gen Intel(R) Core(TM) i5-1245U",
    ),
    model(
        Kind::WindowsDesktop,
        "Dell Inc.",
        "OptiPlex 7010",
        "OptiPlex 7010",
        "13th Gen Intel(R) Core(TM) i5-13500",
    ),
    model(
        Kind::WindowsDesktop,
        "HP",
        "EliteDesk 800 G9 Mini",
        "HP EliteDesk 800 G9 Desktop Mini PC",
        "12th Gen Intel(R) Core(TM) i7-12700T",
    ),
    model(
        Kind::WindowsDesktop,
        "LENOVO",
        "ThinkCentre M70q Gen 4",
        "12E30023US",
        "13th Gen Intel(R) Core(TM) i5-13400T",
    ),
    model(
        Kind::AndroidPhone,
        "samsung",
        "Galaxy S23",
        "SM-S911B",
        "Snapdragon 8 Gen 2",
    ),
    model(
        Kind::AndroidPhone,
        "samsung",
        "Galaxy A54 5G",
        "SM-A546B",
        "Exynos 1380",
    ),
    model(
        Kind::AndroidPhone,
        "Google",
        "Pixel 8",
        "Pixel 8",
        "Google Tensor G3",
    ),
];

/// 2024-07-23T00:00:00Z: "now" in the synthetic world.
pub const NOW: i64 = 1_721_692_800;

impl Fleet {
    /// An Apple fleet of `devices` devices: about 45% MacBooks, 15% desktop
    /// Macs, 20% iPhones, 15% iPads, 5% Apple TVs; ~12% unassigned, ~60%
    /// without asset tag, ~1% without serial, ~2% never checked in.
    pub fn apple(devices: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let people_count = (devices * 2 / 3).max(1);
        let people = (0..people_count)
            .map(|i| person(&mut rng, i))
            .collect::<Vec<_>>();
        let machines = (0..devices)
            .map(|i| {
                let roll = rng.random_range(0..100);
                let kind = match roll {
                    0..45 => Kind::MacLaptop,
                    45..60 => Kind::MacDesktop,
                    60..80 => Kind::IPhone,
                    80..95 => Kind::IPad,
                    _ => Kind::AppleTv,
                };
                machine(&mut rng, i, kind, people.len())
            })
            .collect();
        Self {
            machines,
            people,
            groups: GROUPS.to_vec(),
        }
    }

    /// A cross-platform fleet: about 42% Windows laptops (Dell, HP, Lenovo,
    /// Surface), 10% Windows desktops, 15% Macs, 15% iPhones, 5% iPads, 13%
    /// Android phones (Samsung, Google); ~12% unassigned, ~1% without
    /// serial, ~2% never checked in, most Android and some iPhones personal.
    pub fn mixed(devices: usize, seed: u64) -> Self {
        // Salted so that `mixed` and `apple` with one seed share no ids.
        let mut rng = StdRng::seed_from_u64(seed ^ 0x6d69_7865_6421);
        let people_count = (devices * 2 / 3).max(1);
        let people = (0..people_count)
            .map(|i| person(&mut rng, i))
            .collect::<Vec<_>>();
        let machines = (0..devices)
            .map(|i| {
                let kind = match rng.random_range(0..100) {
                    0..42 => Kind::WindowsLaptop,
                    42..52 => Kind::WindowsDesktop,
                    52..64 => Kind::MacLaptop,
                    64..67 => Kind::MacDesktop,
                    67..82 => Kind::IPhone,
                    82..87 => Kind::IPad,
                    _ => Kind::AndroidPhone,
                };
                let mut m = machine(&mut rng, i, kind, people.len());
                m.personal = match kind {
                    Kind::AndroidPhone => rng.random_bool(0.6),
                    Kind::IPhone => rng.random_bool(0.2),
                    _ => false,
                };
                m
            })
            .collect();
        Self {
            machines,
            people,
            groups: GROUPS.to_vec(),
        }
    }
}

/// A UUID-shaped id from the generator.
pub fn uuid(rng: &mut StdRng) -> String {
    let b: u128 = rng.random();
    let h = format!("{b:032x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

fn person(rng: &mut StdRng, i: usize) -> Person {
    let first = FIRST.choose(rng).unwrap();
    let last = LAST.choose(rng).unwrap();
    let (department, job_title) = DEPARTMENTS.choose(rng).unwrap();
    Person {
        id: uuid(rng),
        name: format!("{first} {last}"),
        email: format!(
            "{}.{}{}@example.com",
            first.to_lowercase(),
            last.to_lowercase(),
            i
        ),
        department: (*department).into(),
        job_title: (*job_title).into(),
        active: rng.random_bool(0.95),
    }
}

fn machine(rng: &mut StdRng, i: usize, kind: Kind, people: usize) -> Machine {
    // Every draw an Apple kind makes must stay as it was (see
    // `apple_fleet_is_unchanged`): other kinds branch off around them.
    let options: Vec<_> = MODELS.iter().filter(|m| m.kind == kind).collect();
    let model = *options.choose(rng).unwrap();
    let is_mac = kind.is_mac();
    let owner =
        (kind != Kind::AppleTv && rng.random_bool(0.88)).then(|| rng.random_range(0..people));
    let serial = (!rng.random_bool(0.01)).then(|| match model.manufacturer {
        "Apple" => serial(rng),
        maker => oem_serial(rng, maker),
    });
    let os = match kind {
        Kind::MacLaptop | Kind::MacDesktop => *[
            ("14.4.1", "23E224"),
            ("14.5", "23F79"),
            ("13.6.7", "22G720"),
        ]
        .choose(rng)
        .unwrap(),
        Kind::IPhone | Kind::IPad => *[("17.5.1", "21F90"), ("17.4", "21E219")]
            .choose(rng)
            .unwrap(),
        Kind::AppleTv => ("17.5", "21L569"),
        // Windows: the full version and the "OS build" Windows shows.
        Kind::WindowsLaptop | Kind::WindowsDesktop => *[
            ("10.0.22631.3880", "22631.3880"),
            ("10.0.22621.3737", "22621.3737"),
            ("10.0.19045.4651", "19045.4651"),
        ]
        .choose(rng)
        .unwrap(),
        Kind::AndroidPhone => *[("14", "UP1A.231005.007"), ("13", "TP1A.220624.014")]
            .choose(rng)
            .unwrap(),
    };
    let enrolled_first = NOW - rng.random_range(30..900) * 86_400;
    let enrolled_last = enrolled_first + rng.random_range(0..30) * 86_400;
    let last_check_in = (!rng.random_bool(0.02)).then(|| NOW - rng.random_range(0..14 * 86_400));
    let catalog = catalog_range(kind);
    let app_count = if is_mac || kind.is_windows() {
        rng.random_range(4..catalog.len())
    } else if kind == Kind::AndroidPhone {
        rng.random_range(2..catalog.len())
    } else {
        rng.random_range(0..4)
    };
    let mut apps: Vec<usize> = catalog.collect();
    apps.sort_by_key(|_| rng.random::<u32>());
    apps.truncate(app_count);
    apps.sort();
    let name = match kind {
        Kind::MacLaptop => format!("MacBook {i:05}"),
        Kind::MacDesktop => format!("Mac {i:05}"),
        Kind::IPhone => format!("iPhone {i:05}"),
        Kind::IPad => format!("iPad {i:05}"),
        Kind::AppleTv => format!("Apple TV {i:05}"),
        Kind::WindowsLaptop => format!("ACME-LT-{i:05}"),
        Kind::WindowsDesktop => format!("ACME-DT-{i:05}"),
        Kind::AndroidPhone => format!("{} {i:05}", model.name),
    };
    Machine {
        id: uuid(rng),
        kind,
        name,
        model: model.name,
        model_identifier: model.identifier,
        manufacturer: model.manufacturer,
        serial,
        udid: uuid(rng),
        os,
        owner,
        asset_tag: rng.random_bool(0.4).then(|| format!("IT-{:06}", i)),
        mac: (0..6)
            .map(|_| format!("{:02x}", rng.random::<u8>()))
            .collect::<Vec<_>>()
            .join(":"),
        memory_gb: if is_mac || kind.is_windows() {
            *[8, 16, 32].choose(rng).unwrap()
        } else if kind == Kind::AndroidPhone {
            *[6, 8, 12].choose(rng).unwrap()
        } else {
            *[4, 6, 8].choose(rng).unwrap()
        },
        storage_gb: *[128, 256, 512, 1000].choose(rng).unwrap(),
        processor: model.processor,
        // Only computers can run unencrypted (FileVault, BitLocker).
        encrypted: !(is_mac || kind.is_windows()) || rng.random_bool(0.9),
        supervised: rng.random_bool(0.8),
        group: match kind {
            Kind::IPad => 2,
            Kind::AppleTv => 5,
            Kind::WindowsDesktop => *[4, 5].choose(rng).unwrap(),
            _ => *[0, 1, 3, 4].choose(rng).unwrap(),
        },
        last_check_in,
        enrolled: (enrolled_first, enrolled_last),
        apps,
        tags: if rng.random_bool(0.3) {
            vec!["pilot"]
        } else {
            vec![]
        },
        personal: false,
    }
}

fn serial(rng: &mut StdRng) -> String {
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";
    (0..12)
        .map(|_| *CHARS.choose(rng).unwrap() as char)
        .collect()
}

/// A serial in the shape each manufacturer uses (Dell service tags are 7
/// characters, HP's start `5CG`, Lenovo's `PF`, Samsung's `R5C`).
fn oem_serial(rng: &mut StdRng, manufacturer: &str) -> String {
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";
    let (prefix, len) = match manufacturer {
        "Dell Inc." => ("", 7),
        "HP" => ("5CG", 10),
        "LENOVO" => ("PF", 8),
        "samsung" => ("R5C", 11),
        _ => ("", 12),
    };
    let digits_only = manufacturer == "Microsoft Corporation";
    let rest = (prefix.len()..len).map(|_| {
        if digits_only {
            char::from(b'0' + rng.random_range(0..10))
        } else {
            *CHARS.choose(rng).unwrap() as char
        }
    });
    prefix.chars().chain(rest).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_and_mixed() {
        let a = Fleet::apple(2_000, 7);
        let b = Fleet::apple(2_000, 7);
        assert_eq!(a.machines[1234].id, b.machines[1234].id);
        let count = |k| a.machines.iter().filter(|m| m.kind == k).count();
        for k in [
            Kind::MacLaptop,
            Kind::MacDesktop,
            Kind::IPhone,
            Kind::IPad,
            Kind::AppleTv,
        ] {
            assert!(count(k) > 50, "{k:?}");
        }
        assert!(a.machines.iter().any(|m| m.owner.is_none()));
        assert!(a.machines.iter().any(|m| m.serial.is_none()));
        assert!(a.machines.iter().any(|m| m.asset_tag.is_none()));
        let ids: std::collections::HashSet<_> = a.machines.iter().map(|m| &m.id).collect();
        assert_eq!(ids.len(), 2_000);
    }

    #[test]
    fn mixed_covers_every_platform() {
        let f = Fleet::mixed(3_000, 7);
        assert_eq!(
            f.machines[2_345].id,
            Fleet::mixed(3_000, 7).machines[2_345].id
        );
        let count = |k| f.machines.iter().filter(|m| m.kind == k).count();
        for k in [
            Kind::WindowsLaptop,
            Kind::WindowsDesktop,
            Kind::MacLaptop,
            Kind::IPhone,
            Kind::IPad,
            Kind::AndroidPhone,
        ] {
            assert!(count(k) > 50, "{k:?}");
        }
        for maker in [
            "Dell Inc.",
            "HP",
            "LENOVO",
            "Microsoft Corporation",
            "samsung",
            "Google",
        ] {
            assert!(
                f.machines.iter().any(|m| m.manufacturer == maker),
                "{maker}"
            );
        }
        assert!(f.machines.iter().any(|m| m.serial.is_none()));
        assert!(f.machines.iter().any(|m| m.owner.is_none()));
        assert!(f.machines.iter().any(|m| m.last_check_in.is_none()));
        assert!(f.machines.iter().any(|m| m.personal));
        for m in &f.machines {
            let range = catalog_range(m.kind);
            assert!(m.apps.iter().all(|a| range.contains(a)), "{:?}", m.kind);
        }
        assert_eq!(software(CATALOG.len()).name, WINDOWS_SOFTWARE[0].name);
        assert_eq!(software(software_count() - 1).name, "Chrome");
    }

    /// A digest of everything `Fleet::apple` generated before the mixed
    /// fleet existed: Iru's tests and benchmarks depend on it staying put.
    #[test]
    fn apple_fleet_is_unchanged() {
        let f = Fleet::apple(3_000, 42);
        let mut text = format!("{:?}{:?}", f.people, f.groups);
        for m in &f.machines {
            text.push_str(&format!(
                "{:?}",
                (
                    (
                        &m.id,
                        m.kind,
                        &m.name,
                        m.model,
                        m.model_identifier,
                        &m.serial
                    ),
                    (&m.udid, m.os, m.owner, &m.asset_tag, &m.mac, m.memory_gb),
                    (
                        m.storage_gb,
                        m.processor,
                        m.encrypted,
                        m.supervised,
                        m.group
                    ),
                    (m.last_check_in, m.enrolled, &m.apps, &m.tags),
                )
            ));
        }
        assert_eq!(crate::sim::fnv(text.as_bytes()), 0x1da9_3299_59ac_d2bf);
    }
}
