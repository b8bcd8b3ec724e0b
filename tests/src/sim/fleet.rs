//! A seeded synthetic fleet, vendor-neutral: people, physical devices and
//! installed software. Each simulator renders it in its vendor's format.
//! The same seed always gives the same fleet.

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
    /// Model identifier.
    pub model_identifier: &'static str,
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
    /// Installed software (indexes into [`CATALOG`]).
    pub apps: Vec<usize>,
    /// Tags.
    pub tags: Vec<&'static str>,
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

/// Software every generated device draws from.
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

/// `(kind, model, identifier, processor, memory choices)`.
const MODELS: &[(Kind, &str, &str, &str)] = &[
    (
        Kind::MacLaptop,
        "MacBook Air (M2, 2022)",
        "Mac14,2",
        "Apple M2",
    ),
    (
        Kind::MacLaptop,
        "MacBook Pro (14-inch, M3 Pro, 2023)",
        "Mac15,6",
        "Apple M3 Pro",
    ),
    (
        Kind::MacLaptop,
        "MacBook Pro (16-inch, 2019)",
        "MacBookPro16,1",
        "6-Core Intel Core i7",
    ),
    (
        Kind::MacDesktop,
        "iMac (24-inch, M1, 2021)",
        "iMac21,1",
        "Apple M1",
    ),
    (
        Kind::MacDesktop,
        "Mac mini (M2, 2023)",
        "Mac14,3",
        "Apple M2",
    ),
    (
        Kind::MacDesktop,
        "Mac Studio (2022)",
        "Mac13,1",
        "Apple M1 Max",
    ),
    (Kind::IPhone, "iPhone 15 Pro", "iPhone16,1", ""),
    (Kind::IPhone, "iPhone 13", "iPhone14,5", ""),
    (Kind::IPad, "iPad (8th generation) (Wi-Fi)", "iPad11,6", ""),
    (
        Kind::IPad,
        "iPad Pro (11-inch) (4th generation)",
        "iPad14,3",
        "",
    ),
    (
        Kind::AppleTv,
        "Apple TV 4K (3rd generation)",
        "AppleTV14,1",
        "",
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
    let options: Vec<_> = MODELS.iter().filter(|m| m.0 == kind).collect();
    let (_, model, model_identifier, processor) = **options.choose(rng).unwrap();
    let is_mac = matches!(kind, Kind::MacLaptop | Kind::MacDesktop);
    let owner =
        (kind != Kind::AppleTv && rng.random_bool(0.88)).then(|| rng.random_range(0..people));
    let serial = (!rng.random_bool(0.01)).then(|| serial(rng));
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
    };
    let enrolled_first = NOW - rng.random_range(30..900) * 86_400;
    let enrolled_last = enrolled_first + rng.random_range(0..30) * 86_400;
    let last_check_in = (!rng.random_bool(0.02)).then(|| NOW - rng.random_range(0..14 * 86_400));
    let app_count = if is_mac {
        rng.random_range(4..CATALOG.len())
    } else {
        rng.random_range(0..4)
    };
    let mut apps: Vec<usize> = (0..CATALOG.len()).collect();
    apps.sort_by_key(|_| rng.random::<u32>());
    apps.truncate(app_count);
    apps.sort();
    let kind_name = match kind {
        Kind::MacLaptop => "MacBook",
        Kind::MacDesktop => "Mac",
        Kind::IPhone => "iPhone",
        Kind::IPad => "iPad",
        Kind::AppleTv => "Apple TV",
    };
    Machine {
        id: uuid(rng),
        kind,
        name: format!("{kind_name} {i:05}"),
        model,
        model_identifier,
        serial,
        udid: uuid(rng),
        os,
        owner,
        asset_tag: rng.random_bool(0.4).then(|| format!("IT-{:06}", i)),
        mac: (0..6)
            .map(|_| format!("{:02x}", rng.random::<u8>()))
            .collect::<Vec<_>>()
            .join(":"),
        memory_gb: if is_mac {
            *[8, 16, 32].choose(rng).unwrap()
        } else {
            *[4, 6, 8].choose(rng).unwrap()
        },
        storage_gb: *[128, 256, 512, 1000].choose(rng).unwrap(),
        processor,
        encrypted: !is_mac || rng.random_bool(0.9),
        supervised: rng.random_bool(0.8),
        group: match kind {
            Kind::IPad => 2,
            Kind::AppleTv => 5,
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
    }
}

fn serial(rng: &mut StdRng) -> String {
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";
    (0..12)
        .map(|_| *CHARS.choose(rng).unwrap() as char)
        .collect()
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
}
