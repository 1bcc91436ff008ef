//! Demo records: FitnessAlly-shaped data (exercises pointing at the demo GIFs,
//! workouts referencing exercises, nutritionalInfo, recipes referencing
//! ingredients, workoutSchedules and mealPlans referencing those, and
//! userFitnessProfiles referencing schedules and plans — one of them private),
//! deterministic, at any scale. `scale` 1 is about 625 records; 160 is about
//! 100,000. The "athlete" profile references up to [`ATHLETE_REFS`] schedules and
//! as many meal plans: at scale ≥ 13 its fully resolved answer (`resolveDepth=3`)
//! is over 100 MB, the seeds' worst case.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::demo::DEMO_GIFS;

/// Per scale unit.
const EXERCISES: u64 = 60;
const INGREDIENTS: u64 = 80;
const WORKOUTS: u64 = 40;
const RECIPES: u64 = 40;
const SCHEDULES: u64 = 200;
const PLANS: u64 = 200;
const PROFILES: u64 = 5;
/// Schedules (and meal plans) the athlete profile references.
pub const ATHLETE_REFS: u64 = 2500;

/// The public key that owns the private demo profile (mint a token for it with
/// `oipd token --public-key demo-user-key`).
pub const DEMO_USER_KEY: &str = "demo-user-key";
const NODE_KEY: &str = "demo-node-public-key";

const EXERCISE_NAMES: &[&str] = &[
    "Front Plank", "Dumbbell Bench Press", "High Knee Run", "Barbell Squat", "Push-up", "Jumping Jack", "Lunge",
    "Deadlift", "Pull-up", "Burpee", "Mountain Climber", "Kettlebell Swing", "Bicycle Crunch", "Side Plank",
    "Glute Bridge", "Shoulder Press", "Bent-over Row", "Russian Twist", "Box Jump", "Calf Raise",
];
const EQUIPMENT: &[&[&str]] = &[&[], &["dumbbell"], &["barbell", "bench"], &["kettlebell"], &["resistance band"], &["dumbbell", "bench"]];
const MUSCLES: &[&str] = &["chest", "back", "legs", "core", "shoulders", "arms", "glutes", "cardio"];
const DIFFICULTY: &[&str] = &["beginner", "intermediate", "advanced"];
const TYPES: &[&str] = &["Warm-Up", "Main", "Main", "Cool-Down"];
const INGREDIENT_NAMES: &[&str] = &[
    "chicken breast", "brown rice", "broccoli", "olive oil", "garlic", "spinach", "salmon", "quinoa", "sweet potato",
    "black beans", "avocado", "greek yogurt", "oats", "banana", "almonds", "eggs", "tomato", "onion", "bell pepper",
    "lentils",
];
const CUISINES: &[&str] = &["Mediterranean", "Mexican", "Italian", "Japanese", "Indian", "American"];
const COMMENTS: &[&str] = &["", "ground", "chopped", "boneless", "virgin", "diced", ""];
const INSTRUCTIONS: &str = "Start in a stable position with your feet hip-width apart and your core braced. \
Move through the full range of motion under control, exhaling on the effort and inhaling on the return. \
Keep your spine neutral, shoulders away from your ears and knees tracking over your toes. \
Pause briefly at the end of each repetition, then return slowly to the starting position. \
Stop if you feel sharp pain; reduce the load or the range of motion until the movement is smooth.";

fn did(kind: &str, i: u64) -> String {
    let h = hex::encode(Sha256::digest(format!("oipd-demo:{kind}:{i}").as_bytes()));
    format!("did:arweave:{}", &h[..43])
}

fn oip(did: &str, record_type: &str, block: u64) -> Value {
    json!({
        "did": did, "didTx": did, "recordType": record_type, "recordStatus": "original",
        "inArweaveBlock": block, "indexedAt": crate::civil::iso_from_unix_millis(1_700_000_000_000 + block as i64 * 1000),
        "ver": "0.8.0", "signature": format!("demo-signature-{block}"),
        "templates": {"basic": "-9DirnjVO1FlbEW1lN8jITBESrTsQKEM_BoZ1ey_0mk", record_type: "demo-template"},
        "creator": {"creatorHandle": "fitnessally1", "didAddress": "did:arweave:fitnessally-demo-creator",
                    "didTx": "did:arweave:fitnessally-demo-registration", "publicKey": NODE_KEY}
    })
}

fn basic(name: String, description: String, date: u64, tags: Vec<&str>) -> Value {
    json!({"name": name, "description": description, "date": date, "language": "English", "nsfw": false, "tagItems": tags})
}

/// Pseudo-random but deterministic pick.
fn pick(seed: u64, i: u64, n: u64) -> u64 {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    (x ^ (x >> 29)) % n.max(1)
}

/// Every demo record at `scale`, in dependency order (referenced records first).
pub fn records(scale: u32) -> impl Iterator<Item = Value> {
    let s = scale.max(1) as u64;
    let base_date = 1_735_689_600u64; // 2025-01-01
    let mut block = 1_600_000u64;
    let mut next_block = move || {
        block += 1;
        block
    };
    let mut items: Vec<(String, u64)> = Vec::new();
    for (kind, n) in [
        ("exercise", EXERCISES * s),
        ("nutritionalInfo", INGREDIENTS * s),
        ("workout", WORKOUTS * s),
        ("recipe", RECIPES * s),
        ("workoutSchedule", SCHEDULES * s),
        ("mealPlan", PLANS * s),
        ("userFitnessProfile", PROFILES * s + 1),
    ] {
        items.push((kind.to_owned(), n));
    }
    items.into_iter().flat_map(move |(kind, n)| (0..n).map(move |i| (kind.clone(), i))).map(move |(kind, i)| {
        let b = next_block();
        let d = did(&kind, i);
        match kind.as_str() {
            "exercise" => {
                let name = format!("{} {}", EXERCISE_NAMES[(i % EXERCISE_NAMES.len() as u64) as usize], i / EXERCISE_NAMES.len() as u64 + 1);
                let gif = DEMO_GIFS[(i % DEMO_GIFS.len() as u64) as usize].0;
                let muscle = MUSCLES[(i % MUSCLES.len() as u64) as usize];
                json!({"data": {
                    "basic": basic(name.clone(), format!("{name}: a {muscle} exercise from the FitnessAlly library."), base_date + i, vec!["exercise", muscle, "fitnessally"]),
                    "exercise": {
                        "instructions": [INSTRUCTIONS, "Repeat for the prescribed number of repetitions.", "Rest 60 seconds between sets."],
                        "muscleGroups": [muscle, MUSCLES[((i + 3) % MUSCLES.len() as u64) as usize]],
                        "difficulty": DIFFICULTY[(i % 3) as usize],
                        "category": muscle,
                        "imageUrl": format!("/media/fitnessally/{gif}"),
                        "videoUrl": "",
                        "equipmentRequired": EQUIPMENT[(i % EQUIPMENT.len() as u64) as usize],
                        "isBodyweight": EQUIPMENT[(i % EQUIPMENT.len() as u64) as usize].is_empty(),
                        "exercise_type": TYPES[(i % TYPES.len() as u64) as usize],
                        "est_duration_minutes": 2 + i % 6,
                        "recommended_sets": 3, "recommended_reps": 8 + i % 8,
                        "goalTags": ["strength", "endurance"]
                    }}, "oip": oip(&d, "exercise", b)})
            }
            "nutritionalInfo" => {
                let name = INGREDIENT_NAMES[(i % INGREDIENT_NAMES.len() as u64) as usize];
                json!({"data": {
                    "basic": basic(format!("{name}"), format!("Nutritional information for {name}, per standard serving."), base_date + i, vec!["ingredient", "nutrition"]),
                    "nutritionalInfo": {"standardAmount": 100, "standardUnit": "g", "calories": 50 + (i * 37) % 400,
                        "proteinG": (i * 7) % 40, "fatG": (i * 3) % 30, "carbohydratesG": (i * 11) % 60, "fiberG": i % 12,
                        "sodiumMg": (i * 13) % 500, "isVegan": i % 3 == 0, "isGlutenFree": i % 2 == 0}
                    }, "oip": oip(&d, "nutritionalInfo", b)})
            }
            "workout" => {
                let k = 6 + pick(1, i, 5);
                let ex: Vec<String> = (0..k).map(|j| did("exercise", pick(2, i * 16 + j, EXERCISES * s))).collect();
                json!({"data": {
                    "basic": basic(format!("Workout {}", i + 1), "A balanced session: warm-up, main sets and a cool-down.".into(), base_date + i, vec!["workout", "fitnessally"]),
                    "workout": {"total_duration_minutes": 30 + i % 30, "estimated_calories_burned": 200 + i % 300,
                        "includesWarmup": true, "includesMain": true, "includesCooldown": true, "nonStandardWorkout": false,
                        "exercise": ex, "exercise_amount": vec![3; k as usize], "exercise_unit": vec!["sets"; k as usize],
                        "instructions": "Follow the exercises in order.", "author": "FitnessAlly"}
                    }, "oip": oip(&d, "workout", b)})
            }
            "recipe" => {
                let k = 5 + pick(3, i, 6);
                let ing: Vec<String> = (0..k).map(|j| did("nutritionalInfo", pick(4, i * 16 + j, INGREDIENTS * s))).collect();
                let comments: Vec<&str> = (0..k).map(|j| COMMENTS[(pick(5, i * 16 + j, COMMENTS.len() as u64)) as usize]).collect();
                let cuisine = CUISINES[(i % CUISINES.len() as u64) as usize];
                json!({"data": {
                    "basic": basic(format!("{cuisine} Bowl {}", i + 1), format!("A {cuisine} recipe with balanced macros."), base_date + i, vec!["recipe", cuisine]),
                    "recipe": {"prep_time_mins": 10 + i % 20, "cook_time_mins": 15 + i % 30, "total_time_mins": 25 + i % 50, "servings": 2 + i % 4,
                        "ingredient": ing, "ingredient_amount": vec![1; k as usize], "ingredient_unit": vec!["cup"; k as usize],
                        "ingredient_comment": comments, "instructions": "Prepare the ingredients, cook, combine and serve.",
                        "cuisine": cuisine, "course": "Main", "author": "FitnessAlly"}
                    }, "oip": oip(&d, "recipe", b)})
            }
            "workoutSchedule" => {
                let k = 1 + pick(6, i, 2);
                let w: Vec<String> = (0..k).map(|j| did("workout", pick(7, i * 4 + j, WORKOUTS * s))).collect();
                let day = base_date + (i % 365) * 86_400;
                json!({"data": {
                    "basic": basic(format!("Schedule day {}", i + 1), "Scheduled training".into(), day, vec!["schedule"]),
                    "workoutSchedule": {"scheduled_date": day, "workout": w, "completed": false}
                    }, "oip": oip(&d, "workoutSchedule", b)})
            }
            "mealPlan" => {
                let r: Vec<String> = (0..3).map(|j| did("recipe", pick(8, i * 4 + j, RECIPES * s))).collect();
                let day = base_date + (i % 365) * 86_400;
                json!({"data": {
                    "basic": basic(format!("Meal plan day {}", i + 1), "Breakfast, lunch and dinner".into(), day, vec!["mealplan"]),
                    "mealPlan": {"meal_date": day, "meal": r, "meal_type": ["breakfast", "lunch", "dinner"]}
                    }, "oip": oip(&d, "mealPlan", b)})
            }
            _ => {
                // userFitnessProfile: the last one is the athlete (everything).
                let athlete = i == PROFILES * s;
                let n = if athlete { ATHLETE_REFS.min(SCHEDULES * s) } else { 30 };
                let sched: Vec<String> = (0..n).map(|j| did("workoutSchedule", if athlete { j } else { pick(9, i * 64 + j, SCHEDULES * s) })).collect();
                let plans: Vec<String> = (0..n).map(|j| did("mealPlan", if athlete { j } else { pick(10, i * 64 + j, PLANS * s) })).collect();
                let private = i == 0;
                let name = if athlete { "Athlete profile (all schedules)".to_owned() } else { format!("Member profile {}", i + 1) };
                let mut data = json!({
                    "basic": basic(name, "Goals, schedules and meal plans".into(), base_date + i, vec!["profile"]),
                    "userFitnessProfile": {"goal": "strength", "experience": "intermediate", "workoutSchedule": sched, "mealPlan": plans}
                });
                if private {
                    data["accessControl"] = json!({"access_level": "private", "owner_public_key": DEMO_USER_KEY, "created_by": DEMO_USER_KEY});
                }
                json!({"data": data, "oip": oip(&d, "userFitnessProfile", b)})
            }
        }
    })
}

/// The DID of the athlete profile at `scale`.
pub fn athlete_did(scale: u32) -> String {
    did("userFitnessProfile", PROFILES * scale.max(1) as u64)
}

/// Fill an empty store with the demo records at `scale`, in transactions of
/// [`super::import::BATCH`]. Returns how many were written (0 if the store already
/// had records). `progress` is called with the count so far.
pub async fn seed_if_empty(
    store: &dyn crate::store::RecordStore,
    scale: u32,
    mut progress: impl FnMut(u64),
) -> Result<u64, crate::store::StoreError> {
    if store.count_all().await? > 0 {
        return Ok(0);
    }
    let mut batch = Vec::with_capacity(super::import::BATCH);
    let mut n = 0u64;
    for v in records(scale) {
        let r = crate::oip::model::IndexedRecord::from_value(&v)
            .map_err(|e| crate::store::StoreError::Backend(format!("demo record: {e}")))?;
        batch.push(r);
        if batch.len() == super::import::BATCH {
            n += batch.len() as u64;
            store.upsert(std::mem::take(&mut batch)).await?;
            progress(n);
        }
    }
    n += batch.len() as u64;
    store.upsert(batch).await?;
    progress(n);
    store.after_bulk_load().await?;
    Ok(n)
}
